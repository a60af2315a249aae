"""Load and fault test on loopback: many concurrent clients against the tiny model, nothing lost.

    python -m bench.load --requests 2000 --concurrency 256 --runs 3
    python -m bench.load --requests 1000 --concurrency 128 --runs 1 --kill-engine-after 5
    python -m bench.load --requests 600 --concurrency 256 --runs 6 --settle-s 15   # memory soak

Every request must end as a correct answer (its own image's result) or an honest 503;
``lost`` counts requests that got no HTTP answer at all (exceptions, timeouts). The
resident memory of each server process (engine worker, API worker, ``bentoml serve``) is
read after each run (and again after --settle-s) to show it does not keep growing.
With --kill-engine-after, the engine worker is killed (SIGKILL) mid-run and /readyz
is watched until the service recovers. Results: bench/results/load-<host>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.helpers import BentoServer, encode, noise_image
from tests.tiny_checkpoint import build_tiny_checkpoint

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = [(120, 90), (320, 200), (200, 320), (96, 96)]  # 0-2 tiles: cheap on CPU, still mixed


def _children(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _role(pid: int, root_pid: int) -> str:
    """``serve`` for the root, else the BentoML service a worker runs (``--service-name``)."""
    if pid == root_pid:
        return "serve"
    try:
        args = (Path(f"/proc/{pid}/cmdline").read_bytes()).split(b"\0")
    except OSError:
        return "other"
    if b"--service-name" in args:
        return args[args.index(b"--service-name") + 1].decode()
    return "api" if b"_bentoml_impl.worker.service" in b" ".join(args) else "other"


def process_rss_mb(root_pid: int) -> dict[str, dict[str, float]]:
    """Resident memory per process of the server's tree: ``{role: {rss, anon}}`` in MB."""
    report: dict[str, dict[str, float]] = {}
    for pid in _children(root_pid):
        try:
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if "VmRSS" not in status:
            continue
        entry = report.setdefault(_role(pid, root_pid), {"rss": 0.0, "anon": 0.0})
        entry["rss"] += int(status["VmRSS"].split()[0]) / 1024
        entry["anon"] += int(status.get("RssAnon", "0 kB").split()[0]) / 1024
    return {role: {k: round(v, 1) for k, v in values.items()} for role, values in sorted(report.items())}


def tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    return round(sum(values["rss"] for values in process_rss_mb(root_pid).values()), 1)


def percentile(sorted_values: list[float], p: float) -> float:
    """The p-quantile of an ascending list (nearest rank), in seconds to the millisecond; 0 when empty."""
    if not sorted_values:
        return 0.0
    return round(sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))], 3)


def engine_worker_pid(root_pid: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"--service-name ocr-engine" in cmdline and str(root_pid).encode() not in cmdline:
                return int(entry.name)
    return None


async def one_run(url: str, images: list[str], expected: list[str], total: int, concurrency: int,
                  timeout_s: float) -> dict:
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            try:
                response = await client.post(url + "/ocr", json={"image_base64": images[i % len(images)]})
            except (httpx.HTTPError, OSError) as exc:
                outcomes[f"lost:{exc.__class__.__name__}"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            if response.status_code == 200:
                ok = response.json().get("raw_result") == expected[i % len(images)]
                outcomes["correct" if ok else "wrong_answer"] += 1
            elif response.status_code == 503:
                outcomes["503" if response.headers.get("retry-after") else "503_without_retry_after"] += 1
            else:
                outcomes[str(response.status_code)] += 1

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    wall = time.perf_counter() - started
    latencies.sort()

    lost = sum(v for k, v in outcomes.items() if k.startswith("lost"))
    five_xx = sum(v for k, v in outcomes.items() if k.isdigit() and k.startswith("5") and k != "503")
    return {
        "requests": total, "concurrency": concurrency, "wall_s": round(wall, 2),
        "answered_per_s": round((total - lost) / wall, 1), "outcomes": dict(outcomes),
        "lost": lost, "wrong_answers": outcomes["wrong_answer"], "other_5xx": five_xx,
        "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95), "p99_s": percentile(latencies, 0.99),
        "mean_latency_s": round(statistics.fmean(latencies), 3) if latencies else 0.0,
    }


async def watch_readiness(url: str, stop: asyncio.Event) -> list[tuple[float, int]]:
    transitions: list[tuple[float, int]] = []
    last = None
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:
        while not stop.is_set():
            try:
                status = (await client.get(url + "/readyz")).status_code
            except httpx.HTTPError:
                status = 0
            if status != last:
                transitions.append((round(time.monotonic() - started, 2), status))
                last = status
            await asyncio.sleep(0.2)
    return transitions


async def fault_run(server: BentoServer, images, expected, total, concurrency, timeout_s, kill_after) -> dict:
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_readiness(server.url, stop))

    async def killer() -> dict:
        await asyncio.sleep(kill_after)
        pid = engine_worker_pid(server.process.pid)
        if pid is None:
            return {"killed": None}
        os.kill(pid, signal.SIGKILL)
        return {"killed": pid, "at_s": kill_after}

    kill_task = asyncio.create_task(killer())
    result = await one_run(server.url, images, expected, total, concurrency, timeout_s)
    killed = await kill_task
    recovered_at = None
    deadline = time.monotonic() + 180
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < deadline:
            try:
                health = await client.get(server.url + "/health")
                probe = await client.post(server.url + "/ocr", json={"image_base64": images[0]})
                if health.status_code == 200 and probe.status_code == 200:
                    recovered_at = time.monotonic()
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    stop.set()
    transitions = await watcher
    return {**result, **killed, "readyz_transitions": transitions, "recovered": recovered_at is not None,
            "new_engine_pid": engine_worker_pid(server.process.pid)}


def _exit_on_sigterm(*_: object) -> None:
    """A stopped bench must stop its server too: SIGTERM unwinds through ``main``'s ``finally``."""
    raise SystemExit(143)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--kill-engine-after", type=float, default=None)
    parser.add_argument("--output", default=None)
    parser.add_argument("--settle-s", type=float, default=0,
                        help="after each run, wait this long and read memory again (at rest)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = build_tiny_checkpoint(Path(scratch) / "tiny")
        server = BentoServer(
            {"ENGINE": "deepseek", "DEVICE": "cpu", "MODEL_NAME": str(checkpoint), "MAX_NEW_TOKENS": "12",
             "MIN_NEW_TOKENS": "12", "MAX_BATCH_SIZE": str(args.max_batch_size), "CACHE_ENABLED": "false",
             "MAX_LATENCY_MS": "120000", **dict(item.split("=", 1) for item in args.env)},
            Path(scratch) / "server.log",
        )
        try:
            server.wait_ready()
            images = [base64.b64encode(encode(noise_image(size, seed=i))).decode() for i, size in enumerate(SIZES)]
            expected = [httpx.post(server.url + "/ocr", json={"image_base64": image}, timeout=60).json()["raw_result"]
                        for image in images]
            report = {"machine": platform.node(), "cpu_count": os.cpu_count(), "engine": "deepseek (tiny random, CPU)",
                      "max_batch_size": args.max_batch_size, "env": args.env,
                      "rss_mb_before": tree_rss_mb(server.process.pid),
                      "process_rss_mb_before": process_rss_mb(server.process.pid), "runs": []}
            for _ in range(args.runs):
                run = asyncio.run(one_run(server.url, images, expected, args.requests, args.concurrency, args.timeout))
                run["rss_mb_after"] = tree_rss_mb(server.process.pid)
                run["process_rss_mb_after"] = process_rss_mb(server.process.pid)
                if args.settle_s:
                    time.sleep(args.settle_s)
                    run["process_rss_mb_settled"] = process_rss_mb(server.process.pid)
                report["runs"].append(run)
                print(json.dumps(run))
            if args.kill_engine_after is not None:
                fault = asyncio.run(fault_run(server, images, expected, args.requests, args.concurrency, args.timeout,
                                              args.kill_engine_after))
                report["fault"] = fault
                print(json.dumps(fault))
        finally:
            server.close()
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.output) if args.output else RESULTS / f"load-{platform.node()}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
