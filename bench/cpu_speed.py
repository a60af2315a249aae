"""Seconds per page: the CPU engine (OCR, markdown) against Tesseract, one thread each, same pages, same run.

    python -m bench.cpu_speed --data ../shared/eval --limit 12

Pages are the MANIFEST's image pages and each PDF's first page rendered as the service renders it.
Every page is read by each, in turn, so a busy machine slows all alike; the CPU engine once per
inference library (OpenVINO, onnxruntime), with one single-threaded reader. Tesseract reads each page
twice: with the languages the evaluation gives it (every language the MANIFEST row names, plus English:
the Tesseract whose accuracy the CPU engine is compared with), and with English alone (its default, as
earlier runs of this benchmark did; fast and wrong on Arabic or Fraktur). Writes
bench/results/cpu-speed-<host>.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def pages(data: Path, limit: int) -> list[tuple[str, bytes, str]]:
    """(name, page image, the evaluation's Tesseract languages for it)"""
    from ocr_runner.documents import load_document
    from ocr_runner.evaluation.manifest import load_manifest
    from ocr_runner.evaluation.runners import TesseractRunner

    tesseract = TesseractRunner()
    out = []
    for document in load_manifest(data):
        if document.category in ("formula", "table"):
            continue  # crops, not pages
        loaded = load_document(document.file.read_bytes(), field="file", pages="1", max_pages=1, max_pixels=2**31,
                               base_size=1024, crop_mode=True)
        out.append((document.name, loaded.pages[0].image, tesseract.languages(document)))
        if len(out) >= limit:
            break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/eval"))
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--host", default="vm-2core", help="names the result file: cpu-speed-HOST.json")
    parser.add_argument("--backends", default="openvino,onnxruntime", help="the CPU engine's inference libraries")
    args = parser.parse_args(argv)

    from ocr_runner.engines.base import EnginePage
    from ocr_runner.engines.rapid import RapidOcrEngine
    from ocr_runner.settings import load_settings
    from ocr_runner.tasks import Task, build_prompt

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    # One single-threaded reader each, as Tesseract gets one thread.
    engines = {b: RapidOcrEngine(load_settings(engine="rapidocr", cache_enabled=False, rapidocr_workers=1,
                                               rapidocr_backend=b)) for b in backends}
    for engine in engines.values():
        engine.warmup()
    rows = []
    for name, image, languages in pages(args.data, args.limit):
        row: dict[str, object] = {"page": name}
        for backend, engine in engines.items():
            started = time.perf_counter()
            [result] = engine.run_batch([EnginePage(image=image, task=Task.MARKDOWN,
                                                    prompt=build_prompt(Task.MARKDOWN))])
            row[f"cpu_engine_{backend}_s"] = round(time.perf_counter() - started, 2)
            row["source"] = result.source
        row["tesseract_languages"] = languages
        with tempfile.NamedTemporaryFile(suffix=".png") as handle:
            handle.write(image)
            handle.flush()
            for key, language in (("tesseract_s", languages), ("tesseract_eng_s", "eng")):
                started = time.perf_counter()
                subprocess.run(["tesseract", handle.name, "stdout", "-l", language], capture_output=True, check=True,
                               env={**os.environ, "OMP_THREAD_LIMIT": "1"})
                row[key] = round(time.perf_counter() - started, 2)
        rows.append(row)
        print(" ".join(f"{v!s:>8}" if k != "page" else f"{v!s:<50}" for k, v in row.items()), flush=True)
    summary: dict[str, object] = {"pages": len(rows), "tesseract_mean_s": _mean(rows, "tesseract_s"),
                                   "tesseract_eng_mean_s": _mean(rows, "tesseract_eng_s")}
    for backend in backends:
        summary[f"cpu_engine_{backend}_mean_s"] = _mean(rows, f"cpu_engine_{backend}_s")
        summary[f"ratio_{backend}"] = round(_mean(rows, f"cpu_engine_{backend}_s") / _mean(rows, "tesseract_s"), 2)
        summary[f"ratio_eng_{backend}"] = round(_mean(rows, f"cpu_engine_{backend}_s") / _mean(rows, "tesseract_eng_s"),
                                                2)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cpu-speed-{args.host}.json"
    out.write_text(json.dumps({"summary": summary, "pages": rows}, indent=2) + "\n")
    print("\n| backend | pages | CPU engine s/page | Tesseract s/page (its languages; English only) | ratio |"
          "\n|---|---|---|---|---|")
    for backend in backends:
        print(f"| {backend} | {len(rows)} | {summary[f'cpu_engine_{backend}_mean_s']} | {summary['tesseract_mean_s']}; "
              f"{summary['tesseract_eng_mean_s']} | {summary[f'ratio_{backend}']}; {summary[f'ratio_eng_{backend}']} |")
    return 0


def _mean(rows: list[dict[str, object]], key: str) -> float:
    return round(statistics.mean(float(r[key]) for r in rows), 2)  # type: ignore[arg-type]


if __name__ == "__main__":
    raise SystemExit(main())
