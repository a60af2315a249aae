"""Pages per second for one multi-page PDF through a real `bentoml serve` (issue: documents).

    python -m bench.pdf_throughput --engine rapidocr --pages 8 --workers 1,0   # one reader, then one per core
    python -m bench.pdf_throughput --engine tiny --pages 1,4,16 --new-tokens 32 --max-batch-size 16

Writes bench/results/pdf-throughput-<host>-<engine>.json. Timings are for comparison on
one machine, not targets: run both sides of a comparison in the same session.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.helpers import BentoServer, make_pdf

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = "invoice total amount order shipping delivery customer account number date payment reference".split()


def text_pages(count: int, lines_per_page: int = 18, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [f"{page + 1}.{line + 1} " + " ".join(rng.choice(WORDS) for _ in range(5)) for line in range(lines_per_page)]
        for page in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", default="rapidocr", help="rapidocr, deepseek (with --model-name) or tiny")
    parser.add_argument("--pages", type=lambda v: [int(x) for x in v.split(",")], default=[20],
                        help="pages per PDF, one or a comma list (how cost grows with pages per request)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=0, help="DeepSeek: force this many new tokens a page")
    parser.add_argument("--model-name", default=None)
    parser.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=[0],
                        help="CPU engine: RAPIDOCR_WORKERS per run, a comma list (0: one reader per core)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    env = {"ENGINE": "deepseek" if args.engine == "tiny" else args.engine, "MAX_BATCH_SIZE": str(args.max_batch_size),
           "CACHE_ENABLED": "false", "MAX_PDF_PAGES": str(max(*args.pages, 100))}
    if args.new_tokens:
        env.update(MIN_NEW_TOKENS=str(args.new_tokens), MAX_NEW_TOKENS=str(args.new_tokens))
    with tempfile.TemporaryDirectory() as scratch:
        if args.engine == "tiny":
            from tests.tiny_checkpoint import build_tiny_checkpoint

            args.model_name = str(build_tiny_checkpoint(Path(scratch) / "tiny"))
        if args.model_name:
            env["MODEL_NAME"] = args.model_name
        records = []
        for workers in args.workers if args.engine == "rapidocr" else [0]:
            with BentoServer({**env, "RAPIDOCR_WORKERS": str(workers)}, Path(scratch) / "server.log") as server:
                health = httpx.get(server.url + "/health").json()
                for pages in args.pages:
                    records.append({"rapidocr_workers": workers or None, **time_pdf(server.url, pages, args.repeats)})
    report = {
        "machine": platform.node(),
        "cpu_count": os.cpu_count(),
        "engine": health["engine"],
        "model": health["model"],
        "device": health["device"],
        "gpu_name": health["gpu_name"],
        "batching": health.get("batching"),
        "max_batch_size": args.max_batch_size,
        "new_tokens": args.new_tokens or None,
        "records": records,
    }
    out = args.out or RESULTS / f"pdf-throughput-{platform.node()}-{args.engine}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def time_pdf(url: str, pages: int, repeats: int) -> dict:
    """One PDF of ``pages`` text pages through /ocr, ``repeats`` times: wall time and pages/s."""
    pdf = base64.b64encode(make_pdf(text_pages(pages))).decode()
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = httpx.post(url + "/ocr", json={"image_base64": pdf}, timeout=3600)
        walls.append(time.perf_counter() - started)
        response.raise_for_status()
        data = response.json()
        assert len(data["pages"]) == pages and not data["metadata"]["failed_pages"]
    median = statistics.median(walls)
    record = {
        "pages": pages,
        "wall_s": [round(w, 3) for w in walls],
        "pages_per_s_median": round(pages / median, 3),
        "seconds_per_page": round(median / pages, 3),
        "max_engine_batch": data["metadata"]["batch_size"],
    }
    print(json.dumps(record), flush=True)
    return record


if __name__ == "__main__":
    main()
