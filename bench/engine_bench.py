"""Engine-level throughput of the DeepSeek engine: batch size x output length, with a time profile.

Runs the production ``DeepseekEngine`` in-process (no HTTP) on rendered A4 pages in the
default crop mode, forcing every page to generate exactly N new tokens, and reports
pages/s, output tokens/s, peak GPU memory and where the time goes (CPU preprocessing,
vision encoder + prefill, per-step decode).

    python -m bench.fullsize /tmp/ocr2-random --device cuda
    python -m bench.engine_bench --model /tmp/ocr2-random --batch-sizes 1,8,32,64 --new-tokens 256,1024

``--modes`` adds the cost of each resolution mode (prompt tokens, preprocessing, vision +
prefill, decode step). ``--mixed 200:2000 --mixed-pages 256`` adds mixed output lengths: pages wanting between 200
and 2,000 tokens, through static batches (each runs until its longest page finishes) and
through continuous batching, in the same run. Results: bench/results/engine-<card>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import time
from pathlib import Path

from ocr_runner.engines.base import EnginePage
from ocr_runner.settings import Settings
from ocr_runner.tasks import PROMPTS, Task
from tests.helpers import render_page

RESULTS = Path(__file__).resolve().parent / "results"
A4_150DPI = (1240, 1754)


def page_png(seed: int, lines: int = 60) -> bytes:
    """An A4 page of text (60 lines: dense) so tiling and image decode cost what a real page costs."""
    rng = random.Random(seed)
    words = "invoice total amount tax date customer order number page section table figure".split()
    lines = [" ".join(rng.choice(words) for _ in range(9)) for _ in range(lines)]
    buffer = io.BytesIO()
    render_page(lines, size=A4_150DPI, font_size=22).save(buffer, format="PNG")
    return buffer.getvalue()


def jobs_for(count: int, new_tokens: list[int]) -> list[EnginePage]:
    return [
        EnginePage(image=page_png(i), task=Task.OCR, prompt=PROMPTS[Task.OCR], max_new_tokens=new_tokens[i % len(new_tokens)])
        for i in range(count)
    ]


def gpu_peak_gib(torch) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def prepared_inputs(engine, jobs: list[EnginePage]):
    """The engine's own CPU preparation of one batch (decode, resize, tile, tokenise), still on the CPU."""
    from ocr_runner.images import load_image
    from ocr_runner.modes import ResolutionMode, snap_mode

    images = [load_image(j.image, max_pixels=engine.settings.max_image_pixels) for j in jobs]
    first = jobs[0]
    mode = snap_mode(ResolutionMode(first.base_size, first.image_size, first.crop_mode), engine.supported_modes)
    return engine.inputs.prepare(images, [j.prompt for j in jobs], mode)


def timed_generate(engine, inputs: dict, **generation) -> float:
    """Seconds for the engine's vision encoding and ``generate`` on device inputs, GPU work included."""
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    model_inputs = dict(inputs)
    sync()
    started = time.perf_counter()
    with torch.inference_mode():
        model_inputs["mm_encoder_outputs"] = {"image": engine.inputs.encode_images(model_inputs)}
        engine.net.generate(**model_inputs, do_sample=False, pad_token_id=engine.pad_id, **generation)
    sync()
    return time.perf_counter() - started


def profile_stages(engine, jobs: list[EnginePage]) -> dict[str, float]:
    """CPU preprocessing and vision+prefill (one generated token) for one batch, in seconds."""
    started = time.perf_counter()
    inputs = prepared_inputs(engine, jobs)
    prep_s = time.perf_counter() - started
    inputs = inputs.to(engine.device, dtype=engine.torch_dtype)
    prefill_s = timed_generate(engine, inputs, max_new_tokens=1)
    return {"prep_s": prep_s, "prefill_s": prefill_s, "prompt_tokens": int(inputs["input_ids"].shape[1])}


def run(args: argparse.Namespace) -> dict:
    import torch
    import transformers

    from ocr_runner.engines.deepseek import DeepseekEngine

    base = Settings(model_name=str(args.model), engine="deepseek", max_new_tokens=max(args.new_tokens), max_batch_size=max(args.batch_sizes))
    started = time.perf_counter()
    engine = DeepseekEngine(base)
    engine.warmup()
    load_s = time.perf_counter() - started
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    report: dict = {
        "card": card,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "engine": engine.health().model_dump(),
        "load_s": round(load_s, 1),
        "page": f"A4 {A4_150DPI[0]}x{A4_150DPI[1]} rendered, crop mode",
        "records": [],
    }
    out = args.out or RESULTS / f"engine-{card.replace(' ', '-').lower()}.json"
    for new_tokens in args.new_tokens:
        engine.settings = base.model_copy(update={"max_new_tokens": new_tokens, "min_new_tokens": new_tokens})
        paths = [(m, room) for m in args.batching for room in (args.kv_rooms if m == "continuous" else [0])]
        for batch_size, (batching, kv_room) in [(b, p) for b in args.batch_sizes for p in paths]:
            if engine.continuous:
                engine._batcher.kv_room = kv_room
            jobs = jobs_for(batch_size, [new_tokens])
            stages = profile_stages(engine, jobs)
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            results = engine.run_batch(jobs) if batching == "continuous" else engine.run_static(jobs)
            seconds = time.perf_counter() - started
            errors = [r.error for r in results if r.error]
            tokens = sum(r.output_tokens or 0 for r in results)
            decode_steps = max(new_tokens - 1, 1)
            record = {
                "batching": batching,
                "kv_room": kv_room,
                "batch_size": batch_size,
                "new_tokens": new_tokens,
                "seconds": round(seconds, 2),
                "pages_per_s": round(batch_size / seconds, 3),
                "output_tokens_per_s": round(tokens / seconds, 1),
                "output_tokens": tokens,
                "prompt_tokens": stages["prompt_tokens"],
                "prep_s": round(stages["prep_s"], 3),
                "prefill_s": round(stages["prefill_s"], 3),
                "decode_step_ms": round(1000 * max(seconds - stages["prep_s"] - stages["prefill_s"], 0) / decode_steps, 2),
                "peak_gpu_gib": gpu_peak_gib(torch),
                "errors": errors[:3],
            }
            report["records"].append(record)
            print(json.dumps(record), flush=True)
            out.write_text(json.dumps(report, indent=2))
    if args.modes:
        report["modes"] = mode_scaling(engine, base, args)
    if args.mixed:
        report["mixed_lengths"] = mixed_lengths(engine, base, args)
        print(json.dumps(report["mixed_lengths"]), flush=True)
    out.write_text(json.dumps(report, indent=2))
    try:
        plot(report, out.with_suffix(".png"))
    except ImportError:
        print("matplotlib not installed: no plot (pip install -e '.[bench]')")
    return report


def mode_scaling(engine, base: Settings, args: argparse.Namespace) -> list[dict]:
    """Cost by resolution mode: one batch of the same pages in every mode the checkpoint supports,
    each page forced to the same length, so only the image tokens and the vision work differ."""
    tokens = args.new_tokens[0]
    engine.settings = base.model_copy(update={"max_new_tokens": tokens, "min_new_tokens": tokens})
    records = []
    for mode in engine.supported_modes:
        jobs = [
            job.model_copy(update={"base_size": mode.base_size, "image_size": mode.image_size, "crop_mode": mode.crop_mode})
            for job in jobs_for(args.mode_batch, [tokens])
        ]
        # Best of a few runs: one run on a shared machine is mostly noise at these sizes.
        stages = min((profile_stages(engine, jobs) for _ in range(args.mode_repeats)), key=lambda s: s["prefill_s"])
        seconds = float("inf")
        for _ in range(args.mode_repeats):
            started = time.perf_counter()
            results = engine.run_batch(jobs)
            seconds = min(seconds, time.perf_counter() - started)
        record = {
            "mode": f"{mode.base_size}/{mode.image_size}{' crop' if mode.crop_mode else ''}",
            "batch_size": len(jobs),
            "new_tokens": tokens,
            "prompt_tokens": stages["prompt_tokens"],
            "prep_s": round(stages["prep_s"], 3),
            "prefill_s": round(stages["prefill_s"], 3),
            "seconds": round(seconds, 2),
            "pages_per_s": round(len(jobs) / seconds, 3),
            "decode_step_ms": round(1000 * max(seconds - stages["prep_s"] - stages["prefill_s"], 0) / max(tokens - 1, 1), 2),
            "errors": [r.error for r in results if r.error][:3],
        }
        records.append(record)
        print(json.dumps(record), flush=True)
    return records


def mixed_lengths(engine, base: Settings, args: argparse.Namespace) -> dict:
    """Pages wanting between ``low`` and ``high`` tokens, ``--mixed-pages`` of them through
    ``--mixed-batch`` rows: static batches in turn (each runs until its longest page ends, as
    BentoML's batches would) against continuous batching (a finished page's row refills at once)."""
    low, high = args.mixed
    rng = random.Random(1)
    pages = args.mixed_pages or args.mixed_batch
    lengths = [rng.randint(low, high) for _ in range(pages)]
    jobs = jobs_for(pages, lengths)
    engine.settings = base.model_copy(update={"max_new_tokens": high, "min_new_tokens": high})
    batch = args.mixed_batch
    started = time.perf_counter()
    static = [r for i in range(0, pages, batch) for r in engine.run_static(jobs[i : i + batch])]
    static_s = time.perf_counter() - started
    generated = sum(max(lengths[i : i + batch]) * len(lengths[i : i + batch]) for i in range(0, pages, batch))
    useful = sum(r.output_tokens or 0 for r in static)
    record = {
        "pages": pages,
        "batch_size": batch,
        "lengths": f"uniform {low}..{high}",
        "useful_tokens": useful,
        "generated_tokens": generated,
        "static_batching_efficiency": round(useful / generated, 3),
        "static": {"seconds": round(static_s, 2), "pages_per_s": round(pages / static_s, 3)},
    }
    if engine.continuous:
        engine._batcher.max_rows = batch
        started = time.perf_counter()
        flowing = engine.run_batch(jobs)
        seconds = time.perf_counter() - started
        assert [r.output_tokens for r in flowing] == [r.output_tokens for r in static], "lengths differ"
        record["continuous"] = {"seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 3)}
        record["continuous_over_static"] = round(static_s / seconds, 2)
    return record


def plot(report: dict, path: Path) -> None:
    """pages/s against batch size for each output length (and before the engine fixes, when recorded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = report.get("modes")
    fig, axes = plt.subplots(1, 2 if modes else 1, figsize=(11 if modes else 6.5, 4))
    axis = axes[0] if modes else axes
    if modes:  # cost by resolution mode: pages/s, with each mode's prompt tokens
        bars = axes[1].bar([m["mode"] for m in modes], [m["pages_per_s"] for m in modes])
        for bar, mode in zip(bars, modes):
            axes[1].annotate(f"{mode['prompt_tokens']} prompt tokens", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                             ha="center", va="bottom", fontsize=8)
        axes[1].set_ylabel("pages/s")
        axes[1].set_title(f"by resolution mode, {modes[0]['batch_size']} pages x {modes[0]['new_tokens']} tokens")
    series = [("", report["records"])]
    if "before_fixes" in report:
        series.append((" before fixes", report["before_fixes"]["records"]))
    for suffix, records in series:
        paths = sorted({(r.get("batching", "static"), r.get("kv_room", 0)) for r in records})
        for tokens in sorted({r["new_tokens"] for r in records}):
            for batching, room in paths:
                points = sorted(
                    (r["batch_size"], r["pages_per_s"]) for r in records
                    if r["new_tokens"] == tokens and (r.get("batching", "static"), r.get("kv_room", 0)) == (batching, room)
                )
                if not points:
                    continue
                style = ":" if suffix else ("-" if batching == "continuous" else "--")
                name = f"{batching}, KV room {room}" if room else batching
                axis.plot(*zip(*points), style, marker="o", label=f"{tokens} new tokens, {name}{suffix}")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("pages per batch")
    axis.set_ylabel("pages/s")
    axis.set_title(f"DeepSeek engine, {report['card']}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    from ocr_runner.engines.torch_env import prefer_passive_openmp

    prefer_passive_openmp()  # as the service does: the engine runs torch on several threads
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32, 64])
    parser.add_argument("--new-tokens", type=lambda s: [int(x) for x in s.split(",")], default=[256, 1024])
    parser.add_argument("--batching", type=lambda s: s.split(","), default=["continuous", "static"],
                        help="engine paths to time in the batch-size sweep")
    parser.add_argument("--kv-rooms", type=lambda s: [int(x) for x in s.split(",")], default=[0],
                        help="continuous path: KV_CACHE_ROOM values to time (0: transformers' cache, copied every step)")
    parser.add_argument("--mixed", type=lambda s: tuple(int(x) for x in s.split(":")), default=None)
    parser.add_argument("--mixed-batch", type=int, default=64, help="rows decoded together in the mixed run")
    parser.add_argument("--mixed-pages", type=int, default=0, help="pages in the mixed run (default: one batch)")
    parser.add_argument("--modes", action="store_true", help="also: cost by resolution mode")
    parser.add_argument("--mode-batch", type=int, default=8, help="pages per batch in the mode run")
    parser.add_argument("--mode-repeats", type=int, default=3, help="runs per mode; the fastest is kept")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="only draw the PNG for an existing result JSON")
    args = parser.parse_args()
    if args.plot:
        plot(json.loads(args.plot.read_text()), args.plot.with_suffix(".png"))
        return
    run(args)


if __name__ == "__main__":
    main()
