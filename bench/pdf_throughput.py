"""Pages per second for one multi-page PDF through a real `bentoml serve` (issue: documents).

    python -m bench.pdf_throughput --engine rapidocr --pages 20

Writes bench/results/pdf-throughput-<host>-<engine>.json. Timings are for comparison on
one machine, not targets: run both sides of a comparison in the same session.
"""

from __future__ import annotations

import argparse
import base64
import json
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
    parser.add_argument("--engine", default="rapidocr")
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--model-name", default=None)
    args = parser.parse_args()

    pdf = make_pdf(text_pages(args.pages))
    env = {"ENGINE": args.engine, "MAX_BATCH_SIZE": str(args.max_batch_size), "CACHE_ENABLED": "false",
           "MAX_PDF_PAGES": str(max(args.pages, 100))}
    if args.model_name:
        env["MODEL_NAME"] = args.model_name
    with tempfile.TemporaryDirectory() as scratch:
        server = BentoServer(env, Path(scratch) / "server.log")
        try:
            server.wait_ready()
            health = httpx.get(server.url + "/health").json()
            walls = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                response = httpx.post(server.url + "/ocr", json={"image_base64": base64.b64encode(pdf).decode()},
                                      timeout=3600)
                walls.append(time.perf_counter() - started)
                response.raise_for_status()
                data = response.json()
                assert len(data["pages"]) == args.pages and not data["metadata"]["failed_pages"]
        finally:
            server.close()
    report = {
        "machine": platform.node(),
        "cpu_count": __import__("os").cpu_count(),
        "engine": health["engine"],
        "model": health["model"],
        "device": health["device"],
        "gpu_name": health["gpu_name"],
        "pages": args.pages,
        "max_batch_size": args.max_batch_size,
        "wall_s": [round(w, 3) for w in walls],
        "pages_per_s_median": round(args.pages / statistics.median(walls), 3),
        "max_engine_batch": data["metadata"]["batch_size"],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pdf-throughput-{platform.node()}-{health['engine']}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
