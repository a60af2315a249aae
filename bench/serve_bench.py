"""Service throughput: a real `bentoml serve`, N concurrent clients, batched vs batch size 1.

    python -m bench.serve_bench --engine rapidocr --lines 8 --configurations continuous,baseline
    python -m bench.serve_bench --engine tiny --new-tokens 64
    python -m bench.serve_bench --engine deepseek --model /tmp/ocr2-random --new-tokens 256
    python -m bench.serve_bench --engine deepseek --model /tmp/ocr2-random --mixed-tokens 200:2000

For each server configuration (``continuous``: the engine's continuous batching, up to
MAX_BATCH_SIZE pages; ``static``: BentoML's adaptive batches, one ``generate`` each;
``baseline``: the seed's one-at-a-time, MAX_BATCH_SIZE=1) the harness starts the service, sends every
concurrency level's requests (distinct dense A4 pages, result cache off) from this
process, and records pages/s, output tokens/s, p50/p95/p99 latency, the batch sizes the
engine formed, peak server RAM and, with nvidia-smi, peak GPU memory. The speed-up is
reported as a ratio of the two configurations measured in the same run. Results:
bench/results/serve-<machine>-<engine>.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.engine_bench import page_png
from bench.load import percentile, tree_rss_mb
from tests.helpers import BentoServer

RESULTS = Path(__file__).resolve().parent / "results"


class PeakSampler:
    """Samples the server's resident memory (process tree) and the GPU's used memory until stopped."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.rss_mb = 0.0
        self.gpu_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        smi = shutil.which("nvidia-smi")
        while True:
            self.rss_mb = max(self.rss_mb, tree_rss_mb(self.root_pid))
            if smi:
                used = subprocess.run(
                    [smi, "--query-gpu=memory.used", "--format=csv,noheader,nounits"], capture_output=True, text=True
                ).stdout.split()
                if used:
                    self.gpu_mib = max(self.gpu_mib or 0.0, float(used[0]))
            if self._stop.wait(self.interval_s):
                return


async def drive(
    url: str, pages: list[str], total: int, concurrency: int, timeout_s: float, lengths: list[int] | None = None
) -> dict:
    """Send ``total`` requests from ``concurrency`` closed-loop clients; summarise what came back."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    latencies: list[float] = []
    tokens: list[int] = []
    batch_sizes: list[int] = []
    failures: dict[str, int] = {}

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            try:
                body = {"image_base64": pages[i % len(pages)]}
                if lengths:  # mixed output lengths: each request forced to its own length
                    body["max_new_tokens"] = lengths[i % len(lengths)]
                response = await http.post(url + "/ocr", json=body)
            except httpx.HTTPError as exc:
                failures[exc.__class__.__name__] = failures.get(exc.__class__.__name__, 0) + 1
                continue
            if response.status_code != 200:
                failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1
                continue
            latencies.append(time.perf_counter() - started)
            metadata = response.json().get("metadata", {})
            tokens.append(int(metadata.get("output_tokens") or 0))
            batch_sizes.append(int(metadata.get("batch_size") or 1))

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": total,
        "answered": len(latencies),
        "failures": failures,
        "wall_s": round(wall, 2),
        "pages_per_s": round(len(latencies) / wall, 3),
        "output_tokens_per_s": round(sum(tokens) / wall, 1),
        "p50_s": percentile(latencies, 0.50),
        "p95_s": percentile(latencies, 0.95),
        "p99_s": percentile(latencies, 0.99),
        "mean_batch_size": round(statistics.fmean(batch_sizes), 2) if batch_sizes else None,
        "max_batch_size_seen": max(batch_sizes, default=None),
        "_latencies": latencies, "_tokens": sum(tokens), "_batch_sizes": batch_sizes,
    }


def merged(rounds: list[dict], concurrency: int) -> dict:
    """One level's summary from the rounds it was measured in (``--interleave``)."""
    latencies = sorted(x for r in rounds for x in r["_latencies"])
    sizes = [x for r in rounds for x in r["_batch_sizes"]]
    wall = sum(r["wall_s"] for r in rounds)
    failures: dict[str, int] = {}
    for r in rounds:
        for key, count in r["failures"].items():
            failures[key] = failures.get(key, 0) + count
    return {
        "concurrency": concurrency, "requests": sum(r["requests"] for r in rounds), "answered": len(latencies),
        "failures": failures, "rounds": len(rounds), "wall_s": round(wall, 2),
        "pages_per_s": round(len(latencies) / wall, 3), "output_tokens_per_s": round(sum(r["_tokens"] for r in rounds) / wall, 1),
        "p50_s": percentile(latencies, 0.50), "p95_s": percentile(latencies, 0.95), "p99_s": percentile(latencies, 0.99),
        "mean_batch_size": round(statistics.fmean(sizes), 2) if sizes else None, "max_batch_size_seen": max(sizes, default=None),
    }


def public(level: dict) -> dict:
    return {k: v for k, v in level.items() if not k.startswith("_")}


# name -> (max batch size, engine batching); None means the --max-batch-size given.
CONFIGURATIONS = {"continuous": (None, "continuous"), "static": (None, "static"), "baseline": (1, "static")}


def server_env(args: argparse.Namespace, max_batch_size: int, batching: str, model: str | None) -> dict[str, str]:
    env = {
        "ENGINE": "rapidocr" if args.engine == "rapidocr" else "deepseek",
        "BATCHING": batching,
        "MAX_BATCH_SIZE": str(max_batch_size),
        "MAX_LATENCY_MS": str(args.timeout_s * 1000),
        "MAX_WAITING_PAGES": "100000",  # the harness measures waiting, it does not want 503s
        "REQUEST_TIMEOUT_S": str(args.timeout_s),
        "CACHE_ENABLED": "false",  # every request must cost a real inference
    }
    if model:
        env["MODEL_NAME"] = model
    if args.kv_cache_room is not None and batching == "continuous":
        env["KV_CACHE_ROOM"] = str(args.kv_cache_room)
    forced = args.mixed_tokens[1] if args.mixed_tokens else args.new_tokens
    if forced:
        env.update(MIN_NEW_TOKENS=str(forced), MAX_NEW_TOKENS=str(forced))
    return env


def run_configuration(args, name: str, model: str | None, pages: list[str], lengths, workdir: Path) -> dict:
    size, batching = CONFIGURATIONS[name]
    max_batch_size = size or args.max_batch_size
    server = BentoServer(server_env(args, max_batch_size, batching, model), workdir / f"{name}.log")
    try:
        started = time.perf_counter()
        server.wait_ready(timeout_s=args.start_timeout_s)
        health = httpx.get(server.url + "/health", timeout=10).json()
        ready_s = round(time.perf_counter() - started, 1)
        # BentoML's dispatcher (static batches only) trains its latency model on the first ~12 calls after
        # start, and some of those wait for a batch partner; measure the steady state, not the training.
        # The other configurations call the engine directly and need only a first call.
        dispatcher = batching == "static" and max_batch_size > 1
        warmup = args.warmup_requests if dispatcher else min(args.warmup_requests, 2)
        asyncio.run(drive(server.url, pages, warmup, 2, args.timeout_s, lengths))
        levels = []
        for concurrency in args.concurrency:
            total = max(concurrency * args.requests_per_client, args.min_requests)
            if name == "baseline" and args.baseline_max_requests:
                # One at a time serves at one rate whatever the concurrency, so fewer requests measure
                # its pages/s; its latencies at that level are then not those of that many clients.
                total = min(total, args.baseline_max_requests)
            with PeakSampler(server.process.pid) as peak:
                level = asyncio.run(drive(server.url, pages, total, concurrency, args.timeout_s, lengths))
            level = public(level) | {"peak_rss_mb": peak.rss_mb, "peak_gpu_mib": peak.gpu_mib}
            print(json.dumps({"configuration": name, **level}), flush=True)
            levels.append(level)
        return {"max_batch_size": max_batch_size, "batching": batching, "ready_s": ready_s, "health": health,
                "levels": levels}
    finally:
        server.close()


def run_interleaved(args, names: list[str], model: str | None, pages: list[str], lengths, workdir: Path) -> dict:
    """Every configuration's server up at once; each level measured in rounds that alternate between them,
    so that load from elsewhere on the machine falls on all of them alike (a ratio in one run)."""
    servers = {}
    try:
        for name in names:
            size, batching = CONFIGURATIONS[name]
            servers[name] = BentoServer(server_env(args, size or args.max_batch_size, batching, model),
                                        workdir / f"{name}.log")
        report = {}
        for name, server in servers.items():
            server.wait_ready(timeout_s=args.start_timeout_s)
            asyncio.run(drive(server.url, pages, args.warmup_requests, 2, args.timeout_s, lengths))
            size, batching = CONFIGURATIONS[name]
            report[name] = {"max_batch_size": size or args.max_batch_size, "batching": batching,
                            "health": httpx.get(server.url + "/health", timeout=10).json(), "levels": []}
        for concurrency in args.concurrency:
            total = max(concurrency * args.requests_per_client, args.min_requests)
            share = max(concurrency, total // args.interleave)
            rounds: dict[str, list[dict]] = {name: [] for name in names}
            for round_number in range(args.interleave):
                order = names if round_number % 2 == 0 else names[::-1]
                for name in order:
                    rounds[name].append(asyncio.run(
                        drive(servers[name].url, pages, share, concurrency, args.timeout_s, lengths)))
            for name in names:
                level = merged(rounds[name], concurrency)
                print(json.dumps({"configuration": name, **level}), flush=True)
                report[name]["levels"].append(level)
        return report
    finally:
        for server in servers.values():
            server.close()


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (throughput, latency) = plt.subplots(1, 2, figsize=(10, 4))
    for name, configuration in report["configurations"].items():
        xs = [level["concurrency"] for level in configuration["levels"]]
        label = f"{name} (max batch {configuration['max_batch_size']})"
        throughput.plot(xs, [level["pages_per_s"] for level in configuration["levels"]], marker="o", label=label)
        latency.plot(xs, [level["p95_s"] for level in configuration["levels"]], marker="o", label=label)
    for axis, title in ((throughput, "pages/s"), (latency, "p95 latency (s)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    tokens = f", {report['new_tokens']} new tokens/page" if report.get("new_tokens") else ""
    if report.get("mixed_tokens"):
        tokens = f", {report['mixed_tokens']} new tokens/page"
    fig.suptitle(f"{report['engine']} on {report['machine']}{tokens}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["rapidocr", "tiny", "deepseek"], default="rapidocr")
    parser.add_argument("--model", help="checkpoint folder for --engine deepseek (see bench/fullsize.py)")
    parser.add_argument("--new-tokens", type=int, default=0, help="force this many new tokens per page (DeepSeek)")
    parser.add_argument("--mixed-tokens", type=lambda s: tuple(int(x) for x in s.split(":")), default=None,
                        help="LOW:HIGH: force each request to its own length, uniform in LOW..HIGH (DeepSeek)")
    parser.add_argument("--lines", type=int, default=60, help="text lines per page (the CPU engine's cost grows with them)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 64])
    parser.add_argument("--requests-per-client", type=int, default=1)
    parser.add_argument("--min-requests", type=int, default=24,
                        help="requests per level at least: fewer make the 1- and 4-client levels noise")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--warmup-requests", type=int, default=16)
    parser.add_argument("--baseline-max-requests", type=int, default=0,
                        help="cap the one-at-a-time levels at this many requests (pages/s only): "
                        "its rate does not depend on concurrency, and on a GPU at 1,024 tokens a page it "
                        "serves a page in about 20 s")
    parser.add_argument("--kv-cache-room", type=int, default=None,
                        help="KV_CACHE_ROOM for the continuous configuration (unset: the service's default)")
    parser.add_argument("--configurations", default="continuous,static,baseline", help=", ".join(CONFIGURATIONS))
    parser.add_argument("--interleave", type=int, default=0, metavar="ROUNDS",
                        help="run every configuration's server at once and measure each level in this many "
                        "rounds alternating between them (for a machine shared with other work)")
    parser.add_argument("--timeout-s", type=int, default=1800)
    parser.add_argument("--start-timeout-s", type=float, default=600)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--machine", default=None, help="name for the result files (default: GPU name or host)")
    args = parser.parse_args()
    # A SIGTERM must still stop the servers this run started (their `finally` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        workdir = Path(tmp)
        model = args.model
        if args.engine == "tiny":
            from tests.tiny_checkpoint import build_tiny_checkpoint

            model = str(build_tiny_checkpoint(workdir / "tiny"))
        pages = [base64.b64encode(page_png(seed, args.lines)).decode() for seed in range(16)]
        lengths = None
        if args.mixed_tokens:
            rng = random.Random(1)
            lengths = [rng.randint(*args.mixed_tokens) for _ in range(997)]
        report = {
            "engine": args.engine,
            "model": model or "rapidocr (PP-OCRv6, bundled)",
            "machine": args.machine or _machine_name(),
            "new_tokens": args.new_tokens or None,
            "mixed_tokens": f"uniform {args.mixed_tokens[0]}..{args.mixed_tokens[1]}" if args.mixed_tokens else None,
            "kv_cache_room": args.kv_cache_room,
            "page": f"A4 1240x1754, {args.lines} rendered text lines, 16 distinct pages, default mode (1024/640 crop)",
            "configurations": {},
        }
        names = args.configurations.split(",")
        if args.interleave:
            report["interleaved_rounds"] = args.interleave
            report["configurations"] = run_interleaved(args, names, model, pages, lengths, workdir)
        for name in names if not args.interleave else []:
            report["configurations"][name] = run_configuration(args, name, model, pages, lengths, workdir)
        if "baseline" in report["configurations"]:
            report["speedup_pages_per_s"] = speedups(report["configurations"])
            print(json.dumps({"speedup_pages_per_s": report["speedup_pages_per_s"]}), flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"serve-{report['machine']}-{args.engine}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    try:
        plot(report, stem.with_suffix(".png"))
    except ImportError:
        print("matplotlib not installed: no plot (pip install -e '.[bench]')")
    print(f"wrote {stem}.json")


def speedups(configurations: dict) -> dict[str, dict[str, float]]:
    """Pages/s of every configuration over the one-at-a-time baseline, per concurrency level."""
    base = {lvl["concurrency"]: lvl["pages_per_s"] for lvl in configurations["baseline"]["levels"]}
    return {
        name: {str(l["concurrency"]): round(l["pages_per_s"] / base[l["concurrency"]], 2)
               for l in configuration["levels"] if base.get(l["concurrency"])}
        for name, configuration in configurations.items() if name != "baseline"
    }


def _machine_name() -> str:
    smi = shutil.which("nvidia-smi")
    if smi:
        name = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout
        if name.strip():
            return name.strip().splitlines()[0].replace("NVIDIA ", "").replace(" ", "-").lower()
    return f"{platform.node() or 'host'}-cpu".lower()


if __name__ == "__main__":
    main()
