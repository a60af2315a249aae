"""Where a decode step's time goes: torch.profiler tables and generation variants, timed.

    python -m bench.profile_decode --model /tmp/ocr2-random --batch-sizes 1,32

For each batch size: the per-step decode time of the engine's own generate call (with and
without the repetition guard, with a static cache), then the profiler's top operators by
CPU and by GPU time over a short generation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.engine_bench import jobs_for
from ocr_runner.images import load_image
from ocr_runner.modes import ResolutionMode, snap_mode
from ocr_runner.settings import Settings


def prepared(engine, batch_size: int) -> dict:
    jobs = jobs_for(batch_size, [64])
    images = [load_image(j.image, max_pixels=engine.settings.max_image_pixels) for j in jobs]
    mode = snap_mode(ResolutionMode(1024, 640, True), engine.supported_modes)
    inputs = engine._preprocess(images, [j.prompt for j in jobs], mode).to(engine.device, dtype=engine.torch_dtype)
    return dict(inputs)


def timed_generate(engine, inputs: dict, tokens: int, **extra) -> float:
    import torch
    from transformers import LogitsProcessorList

    kwargs = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False, "pad_token_id": engine._pad_id}
    if extra.pop("guard", True) and engine._repetition_guard is not None:
        kwargs["logits_processor"] = LogitsProcessorList([engine._repetition_guard])
    kwargs.update(extra)
    model_inputs = dict(inputs)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    started = time.perf_counter()
    with torch.inference_mode():
        model_inputs["mm_encoder_outputs"] = {"image": engine._encode_images(model_inputs)}
        engine.net.generate(**model_inputs, **kwargs)
    sync()
    return time.perf_counter() - started


def step_ms(engine, inputs: dict, steps: int, **extra) -> float:
    one = timed_generate(engine, inputs, 1, **extra)
    many = timed_generate(engine, inputs, steps + 1, **extra)
    return round(1000 * (many - one) / steps, 2)


def main() -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from ocr_runner.engines.deepseek import DeepseekEngine

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 32])
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--variants", default="default,cudnn_on,cudnn_on_again,no_guard")
    parser.add_argument("--no-tables", action="store_true")
    args = parser.parse_args()
    engine = DeepseekEngine(Settings(model_name=str(args.model), engine="deepseek"), reason="profile")
    # cuDNN's attention builds an execution plan per new shape; "_again" reruns the same shapes.
    variants = {
        "default": ({}, None),
        "cudnn_on": ({}, True),
        "cudnn_on_again": ({}, True),
        "no_guard": ({"guard": False}, None),
        "static_cache": ({"cache_implementation": "static"}, None),
    }
    default_cudnn = torch.backends.cuda.cudnn_sdp_enabled()
    for batch_size in args.batch_sizes:
        inputs = prepared(engine, batch_size)
        timed_generate(engine, inputs, 4)  # warm kernels for this shape
        timings = {}
        for name in args.variants.split(","):
            extra, cudnn = variants[name]
            torch.backends.cuda.enable_cudnn_sdp(default_cudnn if cudnn is None else cudnn)
            try:
                timings[name] = step_ms(engine, inputs, args.steps, **extra)
            except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
                timings[name] = f"failed: {exc.__class__.__name__}: {str(exc)[:200]}"
            print(json.dumps({"batch_size": batch_size, "variant": name, "decode_step_ms": timings[name]}), flush=True)
        torch.backends.cuda.enable_cudnn_sdp(default_cudnn)
        if args.no_tables:
            continue
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            timed_generate(engine, inputs, 9)
        averages = prof.key_averages()
        print(f"== batch {batch_size}: top operators by self CPU time (8 decode steps + prefill)")
        print(averages.table(sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=70))
        print(f"== batch {batch_size}: top operators by GPU time")
        print(averages.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=70))


if __name__ == "__main__":
    main()
