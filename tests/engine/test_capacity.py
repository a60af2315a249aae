"""The decode batch's size from GPU memory: KV bytes per token read from the model, the longest
prompt a page can take, the rows that fit, and the batcher keeping to them."""

from __future__ import annotations

import pytest
from PIL import Image

from ocr_runner.engines import capacity as capacity_module
from ocr_runner.engines import create_engine
from ocr_runner.engines.capacity import GiB, kv_bytes_per_token, rows_that_fit, worst_page
from ocr_runner.engines.continuous import prefill
from ocr_runner.tasks import PROMPTS
from tests.engine.test_continuous import WAIT_S, PausedModel, alone, continuous, readings, wait_until_queued
from tests.helpers import engine_page as job

pytestmark = pytest.mark.engine


def test_kv_bytes_per_token_is_what_the_cache_holds(static_engine):
    text = static_engine.net.config.text_config
    head_dim = text.head_dim or text.hidden_size // text.num_attention_heads
    expected = text.num_hidden_layers * 2 * text.num_key_value_heads * head_dim * 4  # keys and values, float32
    assert kv_bytes_per_token(static_engine.net, "cpu") == expected


def test_kv_bytes_per_token_of_the_v1_model(tiny_v1_settings):
    from tests.tiny_v1_checkpoint import TEXT

    engine = create_engine(tiny_v1_settings.model_copy(update={"batching": "static"}))
    head_dim = TEXT["hidden_size"] // TEXT["num_attention_heads"]
    expected = TEXT["num_hidden_layers"] * 2 * TEXT["num_key_value_heads"] * head_dim * 4
    assert kv_bytes_per_token(engine.net, "cpu") == expected
    # v1 tiles up to 9 and adds a newline token per row of patches: a tall page costs more than a wide one.
    longest, page = engine.worst_page.tokens, engine.worst_page.image
    crop = engine.supported_modes[0]
    tall = max(engine.backend.prepare_inputs([page], [p], crop)["input_ids"].shape[1] for p in PROMPTS.values())
    assert page.height > page.width and tall == longest
    capacity = engine.fit_batch(total_bytes=2**50, reserved_bytes=0)
    assert capacity.rows == tiny_v1_settings.max_batch_size and capacity.row_bytes > expected


def test_the_longest_prompt_is_the_largest_tile_grid(static_engine):
    backend, tile = static_engine.backend, static_engine.tile_pixels
    worst = worst_page(backend.prepare_inputs, static_engine.supported_modes, tile, PROMPTS.values())
    longest, page = worst.tokens, worst.image
    crop = static_engine.supported_modes[0]
    assert crop.crop_mode

    def tokens(width_tiles: float, height_tiles: float) -> int:
        image = Image.new("RGB", (int(width_tiles * tile), int(height_tiles * tile)), "white")
        return max(int(backend.prepare_inputs([image], [p], crop)["input_ids"].shape[1]) for p in PROMPTS.values())

    # No page shape, wide, tall or square, takes more than the worst case found.
    shapes = [(k, 1) for k in range(1, 13)] + [(1, k) for k in range(1, 13)] + [(2, 3), (3, 2), (3, 3), (4, 4)]
    counts = {shape: tokens(*shape) for shape in shapes}
    assert max(counts.values()) <= longest
    assert counts[(1, 1)] < longest  # tiles add tokens: a one-tile page is not the worst case
    assert tokens(page.width / tile, page.height / tile) == longest


def test_rows_that_fit_respect_the_cap_and_the_card():
    row = 126 * 2**20  # full-size OCR-2: 60 KiB a token x 2,149 tokens
    on_h100 = rows_that_fit(512, 80 * GiB, 21 * GiB, row, 0.9, 2149)
    assert on_h100.rows == int((0.9 * 80 - 21) * GiB // row) == 414
    assert on_h100.reason.startswith("GPU memory: 90% of 80.0 GiB")
    assert rows_that_fit(64, 80 * GiB, 21 * GiB, row, 0.9, 2149).rows == 64
    assert rows_that_fit(64, 80 * GiB, 21 * GiB, row, 0.9, 2149).reason.startswith("MAX_BATCH_SIZE (414 rows")
    # Another process holds 30 GiB of the card: only what this one can still reach counts, less the headroom.
    shared = rows_that_fit(512, 80 * GiB, 21 * GiB, row, 0.9, 2149, usable_bytes=50 * GiB)
    assert shared.rows == int((50 - 8 - 21) * GiB // row)
    assert "50.0 GiB this process can reach of 80.0 GiB, less 8.0 GiB headroom" in shared.reason
    starved = rows_that_fit(64, 24 * GiB, 22 * GiB, row, 0.9, 2149)
    assert starved.rows == 1 and "not even one row" in starved.reason


def test_the_batch_keeps_to_the_rows_that_fit(tiny_settings, static_engine, images):
    engine = continuous(tiny_settings, max_batch_size=8, min_new_tokens=24)
    roomy = engine.fit_batch(total_bytes=2**50, reserved_bytes=0)
    assert roomy.rows == 8 and roomy.reason.startswith("MAX_BATCH_SIZE")
    # A card on which three and a half rows fit beside nothing else.
    tight = engine.fit_batch(total_bytes=int(3.5 * roomy.row_bytes / 0.9) + 1, reserved_bytes=0)
    assert tight.rows == 3 and tight.reason.startswith("GPU memory")
    health = engine.health()
    assert (health.max_batch_size, health.batch_limit) == (3, tight.reason)

    rows: list[int] = []
    engine.on_decode_step = lambda r, w: rows.append(r)
    jobs = [job(images[i % len(images)], max_new_tokens=4 + 3 * i) for i in range(6)]
    results = [f.result(WAIT_S) for f in engine.submit(jobs)]
    assert readings(results) == alone(static_engine, jobs, min_new_tokens=24)
    assert max(rows) == 3 and max(r.batch_size for r in results) == 3


def test_newcomers_are_prefilled_a_few_at_a_time(tiny_settings, static_engine, images):
    engine = continuous(tiny_settings, max_batch_size=8, prefill_batch_pages=2, min_new_tokens=24)
    paused = PausedModel(engine)
    first = paused.submit_and_hold(engine, [job(images[0], max_new_tokens=20)])
    later = [job(images[i % len(images)], max_new_tokens=20) for i in range(1, 6)]
    futures = engine.submit(later)
    wait_until_queued(engine, len(later))
    paused.release.set()
    results = [f.result(WAIT_S) for f in first + futures]
    assert readings(results) == alone(static_engine, [job(images[0], max_new_tokens=20), *later], min_new_tokens=24)
    # Five waiting pages join two, two and one at a time, one decode step apart.
    assert paused.steps[:4] == [1, 3, 5, 6]


def test_start_up_measures_a_full_prefill_group_in_every_mode(tiny_settings, monkeypatch):
    """The CUDA start-up path, run on the CPU with the device's memory readings stood in for."""
    import torch

    engine = continuous(tiny_settings, max_batch_size=8, prefill_batch_pages=3)
    shapes = []
    monkeypatch.setattr(capacity_module, "prefill", lambda net, inputs: shapes.append(inputs["input_ids"].shape)
                        or prefill(net, inputs))
    readings = {
        "synchronize": None, "reset_peak_memory_stats": None, "max_memory_allocated": 30 * GiB,
        "mem_get_info": (40 * GiB, 80 * GiB), "memory_reserved": 31 * GiB,
    }
    for name, value in readings.items():
        monkeypatch.setattr(torch.cuda, name, lambda device=None, value=value: value)
    engine.fit_batch_to_gpu_memory()
    # One prefill of three worst-case pages per mode; the crop mode's prompt is the longest there is.
    assert [shape[0] for shape in shapes] == [3] * len(engine.supported_modes)
    assert max(shape[1] for shape in shapes) == engine.worst_page.tokens
    # 40 GiB free + 31 held by this process, less 8 GiB headroom, is under 90% of 80: the shared card decides.
    assert engine.capacity.rows == 8
    assert "71.0 GiB this process can reach of 80.0 GiB, less 8.0 GiB headroom, 30.0 GiB of it" in engine.capacity.reason
