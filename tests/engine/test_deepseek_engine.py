"""The DeepSeek engine on a tiny random checkpoint, loaded by the production code."""

import pytest

from ocr_runner.engines import EnginePage, create_engine
from ocr_runner.engines.deepseek import DeepseekEngine
from ocr_runner.tasks import PROMPTS, Task
from tests.helpers import encode, noise_image, run_with_settings
from tests.helpers import engine_page as job

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module", params=["continuous", "static"])
def engine(tiny_settings, request) -> DeepseekEngine:
    engine = create_engine(tiny_settings.model_copy(update={"batching": request.param}))
    assert isinstance(engine, DeepseekEngine)
    return engine


def test_health_reports_the_loaded_model(engine, tiny_settings):
    health = engine.health()
    assert health.model_loaded and health.engine == "deepseek"
    assert health.model == tiny_settings.model_name
    assert (health.device, health.dtype, health.attn_implementation) == ("cpu", "float32", "sdpa")
    assert health.reason == "ENGINE=deepseek"


def test_batched_equals_single_across_tile_counts(engine, images):
    jobs = [job(image) for image in images]
    batched = engine.run_batch(jobs)
    singles = [engine.run_batch([j])[0] for j in jobs]
    assert [r.error for r in batched] == [None] * len(jobs)
    assert all(r.batch_size == len(jobs) for r in batched)
    assert [r.output_tokens for r in batched] == [12] * len(jobs)
    assert [r.text for r in batched] == [r.text for r in singles]
    # Random weights still see the image: different images must not give identical output.
    assert len({r.text for r in batched}) > 1


def test_batch_order_does_not_change_results(engine, images):
    forward = engine.run_batch([job(i) for i in images])
    backward = engine.run_batch([job(i) for i in reversed(images)])
    assert [r.text for r in forward] == [r.text for r in reversed(backward)]


def test_mixed_tasks_and_modes_in_one_batch(engine, images):
    jobs = [
        job(images[1], Task.OCR),
        job(images[1], Task.MARKDOWN, base_size=1024, image_size=1024, crop_mode=False),
        job(images[2], Task.LOCATE, base_size=640, image_size=640, crop_mode=False),
        job(images[3], Task.FIGURE),
    ]
    batched = engine.run_batch(jobs)
    assert [r.text for r in batched] == [engine.run_batch([j])[0].text for j in jobs]
    assert [(r.effective_base_size, r.effective_image_size, r.effective_crop_mode) for r in batched] == [
        (1024, 768, True), (1024, 1024, False), (768, 768, False), (1024, 768, True)
    ]


@pytest.mark.parametrize(
    ("requested", "effective"),
    [
        ((1024, 640, True), (1024, 768, True)),
        ((1280, 1280, True), (1024, 768, True)),
        ((1024, 1024, False), (1024, 1024, False)),
        ((768, 768, False), (768, 768, False)),
        ((512, 512, False), (768, 768, False)),
        ((1280, 1280, False), (1024, 1024, False)),
    ],
)
def test_every_mode_runs_and_snaps(engine, images, requested, effective):
    base, tile, crop = requested
    [result] = engine.run_batch([job(images[3], base_size=base, image_size=tile, crop_mode=crop)])
    assert result.error is None and result.output_tokens == 12
    assert (result.effective_base_size, result.effective_image_size, result.effective_crop_mode) == effective


def test_a_failing_item_fails_alone(engine, images):
    good = [job(images[0]), job(images[1])]
    # Two image tokens for one image: the processor rejects it, as it would any broken item.
    broken = EnginePage(image=images[2], task=Task.OCR, prompt="<image><image>\nFree OCR.")
    corrupt = EnginePage(image=images[2][:100], task=Task.OCR, prompt=PROMPTS[Task.OCR])
    results = engine.run_batch([good[0], broken, corrupt, good[1]])
    assert results[1].error and "image" in results[1].error and results[1].error_code == "unprocessable"
    assert results[2].error and results[2].error_code == "invalid_input"
    assert [results[0].text, results[3].text] == [engine.run_batch([g])[0].text for g in good]


def test_request_token_cap_is_respected(engine, images):
    [result] = engine.run_batch([EnginePage(image=images[0], task=Task.OCR, prompt=PROMPTS[Task.OCR], max_new_tokens=3)])
    assert result.output_tokens == 3


def test_batched_equals_single_when_rows_end_at_different_steps(tiny_settings, images):
    """No forced length: rows stop at their own end-of-sequence; padding after it must not leak."""
    engine = create_engine(tiny_settings.model_copy(update={"min_new_tokens": 0, "max_new_tokens": 16}))
    from PIL import Image

    # On this seeded checkpoint these end at once (0 tokens) or run to the cap, in one batch.
    mixed = [encode(noise_image((300, 900), 1)), images[0], encode(Image.new("RGB", (300, 300), "white")), images[1]]
    jobs = [job(image) for image in mixed] + [job(mixed[0], Task.MARKDOWN), job(mixed[1], Task.FIGURE)]
    batched = engine.run_batch(jobs)
    singles = [engine.run_batch([j])[0] for j in jobs]
    assert [(r.text, r.output_tokens) for r in batched] == [(r.text, r.output_tokens) for r in singles]
    # The random model ends some rows early and runs others to the cap: both cases are covered.
    lengths = {r.output_tokens for r in batched}
    assert min(lengths) < 16 and max(lengths) == 16, lengths


def test_threaded_preprocessing_and_chunked_vision_do_not_change_tokens(engine, images):
    """Pages split across preprocessing threads (re-padded) and encoded a few at a time read the same."""
    jobs = [job(images[i % len(images)]) for i in range(10)]
    whole = run_with_settings(engine, jobs, preprocess_threads=1, vision_batch_pages=64)
    split = run_with_settings(engine, jobs, preprocess_threads=3, vision_batch_pages=3)
    assert [r.error for r in split] == [None] * len(jobs)
    assert [(r.text, r.output_tokens) for r in split] == [(r.text, r.output_tokens) for r in whole]
