"""Where a decode step's time goes: torch.profiler tables and generation variants, timed.

    python -m bench.profile_decode --model /tmp/ocr2-random --batch-sizes 1,32

For each batch size: the per-step decode time of the engine's own generate call (with and
without the repetition guard, with a static cache), then the profiler's top operators by
CPU and by GPU time over a short generation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.engine_bench import jobs_for, prepared_inputs, timed_generate
from ocr_runner.settings import Settings


def prepared(engine, batch_size: int) -> dict:
    inputs = prepared_inputs(engine, jobs_for(batch_size, [64]))
    return dict(inputs.to(engine.device, dtype=engine.torch_dtype))


def generate_tokens(engine, inputs: dict, tokens: int, guard: bool = True, **extra) -> float:
    """Seconds to generate exactly ``tokens`` new tokens, with the engine's repetition guard unless told not to."""
    from transformers import LogitsProcessorList

    if guard and engine.repetition_guard is not None:
        extra["logits_processor"] = LogitsProcessorList([engine.repetition_guard])
    return timed_generate(engine, inputs, max_new_tokens=tokens, min_new_tokens=tokens, **extra)


def step_ms(engine, inputs: dict, steps: int, **extra) -> float:
    one = generate_tokens(engine, inputs, 1, **extra)
    many = generate_tokens(engine, inputs, steps + 1, **extra)
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
    engine = DeepseekEngine(Settings(model_name=str(args.model), engine="deepseek"))
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
        generate_tokens(engine, inputs, 4)  # warm kernels for this shape
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
            generate_tokens(engine, inputs, 9)
        averages = prof.key_averages()
        print(f"== batch {batch_size}: top operators by self CPU time (8 decode steps + prefill)")
        print(averages.table(sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=70))
        print(f"== batch {batch_size}: top operators by GPU time")
        print(averages.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=70))


if __name__ == "__main__":
    main()
