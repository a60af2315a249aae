"""Seconds per page: the CPU engine (OCR, markdown) against Tesseract, one thread each, same pages, same run.

    python -m bench.cpu_speed --data ../shared/eval --limit 12

Pages are the MANIFEST's image pages and each PDF's first page rendered as the service renders it.
Every page is read by both, alternating, so a busy machine slows both alike. Writes
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


def pages(data: Path, limit: int) -> list[tuple[str, bytes]]:
    from ocr_runner.documents import load_document
    from ocr_runner.evaluation.manifest import load_manifest

    out = []
    for document in load_manifest(data):
        if document.category in ("formula", "table"):
            continue  # crops, not pages
        loaded = load_document(document.file.read_bytes(), field="file", pages="1", max_pages=1, max_pixels=2**31,
                               base_size=1024, crop_mode=True)
        out.append((document.name, loaded.pages[0].image))
        if len(out) >= limit:
            break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/eval"))
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--host", default="vm-2core", help="names the result file: cpu-speed-HOST.json")
    args = parser.parse_args(argv)

    from rapidocr import RapidOCR  # noqa: F401 - fail early without it

    from ocr_runner.engines.base import EnginePage
    from ocr_runner.engines.rapid import RapidOcrEngine
    from ocr_runner.settings import load_settings
    from ocr_runner.tasks import Task, build_prompt

    engine = RapidOcrEngine(load_settings(engine="rapidocr", cache_enabled=False))
    engine._ocr = __import__("rapidocr").RapidOCR(params={  # one onnxruntime thread, as Tesseract gets one
        "Global.log_level": "warning", "Det.limit_side_len": engine.settings.rapidocr_limit_side_len,
        "EngineConfig.onnxruntime.intra_op_num_threads": 1, "EngineConfig.onnxruntime.inter_op_num_threads": 1})
    engine.warmup()
    rows = []
    for name, image in pages(args.data, args.limit):
        started = time.perf_counter()
        [result] = engine.run_batch([EnginePage(image=image, task=Task.MARKDOWN, prompt=build_prompt(Task.MARKDOWN))])
        cpu_s = time.perf_counter() - started
        with tempfile.NamedTemporaryFile(suffix=".png") as handle:
            handle.write(image)
            handle.flush()
            started = time.perf_counter()
            subprocess.run(["tesseract", handle.name, "stdout"], capture_output=True, check=True,
                           env={**os.environ, "OMP_THREAD_LIMIT": "1"})
            tess_s = time.perf_counter() - started
        rows.append({"page": name, "cpu_engine_s": round(cpu_s, 2), "tesseract_s": round(tess_s, 2),
                     "source": result.source})
        print(f"{name:<55} {cpu_s:6.2f}s {tess_s:6.2f}s {result.source}", flush=True)
    summary = {"pages": len(rows),
               "cpu_engine_mean_s": round(statistics.mean(r["cpu_engine_s"] for r in rows), 2),
               "tesseract_mean_s": round(statistics.mean(r["tesseract_s"] for r in rows), 2)}
    summary["ratio"] = round(summary["cpu_engine_mean_s"] / summary["tesseract_mean_s"], 2)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cpu-speed-{args.host}.json"
    out.write_text(json.dumps({"summary": summary, "pages": rows}, indent=2) + "\n")
    cells = (summary["pages"], summary["cpu_engine_mean_s"], summary["tesseract_mean_s"], summary["ratio"])
    print("\n| pages | CPU engine s/page | Tesseract s/page | ratio |\n|---|---|---|---|\n| "
          + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
