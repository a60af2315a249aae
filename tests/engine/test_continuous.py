"""Continuous batching: pages join and leave the running batch between decode steps, and each reads
exactly as it does alone through ``generate`` (greedy, forced and natural lengths, every mode)."""

from __future__ import annotations

import threading

import pytest
import torch
from PIL import Image

from ocr_runner.engines import EngineBusy, create_engine
from ocr_runner.tasks import Task
from tests.helpers import encode, noise_image, run_with_settings
from tests.helpers import engine_page as job

pytestmark = pytest.mark.engine
WAIT_S = 120


def continuous(settings, **updates):
    return create_engine(settings.model_copy(update={"batching": "continuous", "max_new_tokens": 24, **updates}))


def readings(results) -> list[tuple]:
    return [(r.error, r.text, r.output_tokens) for r in results]


def alone(static_engine, jobs, min_new_tokens: int) -> list[tuple]:
    """Each job by itself through ``generate``: the reference every continuous reading must equal."""
    return readings([run_with_settings(static_engine, [j], min_new_tokens=min_new_tokens)[0] for j in jobs])


class PausedModel:
    """Holds the model's thread at its first decode step until released: a page is certainly decoding."""

    def __init__(self, engine) -> None:
        self.decoding, self.release, self.steps = threading.Event(), threading.Event(), []
        engine.on_decode_step = self.observe

    def observe(self, rows: int, waiting: int) -> None:
        self.steps.append(rows)
        self.decoding.set()
        assert self.release.wait(WAIT_S)

    def submit_and_hold(self, engine, jobs) -> list:
        """Submit ``jobs`` and return once they decode, held at their first step until released."""
        futures = engine.submit(jobs)
        assert self.decoding.wait(WAIT_S)
        return futures


def wait_until_queued(engine, pages: int, unless=None) -> None:
    """Until ``pages`` are prepared and queued for a row (or ``unless`` is already done)."""
    while engine._batcher.ready < pages and not (unless is not None and unless.done()):
        threading.Event().wait(0.01)


def mixed_jobs(images):
    """Different lengths (forced up to each cap), tasks, modes and tile counts."""
    return [
        job(images[3], max_new_tokens=24),
        job(images[0], max_new_tokens=3),
        job(images[1], Task.MARKDOWN, base_size=1024, image_size=1024, crop_mode=False, max_new_tokens=9),
        job(images[2], Task.LOCATE, base_size=640, image_size=640, crop_mode=False, max_new_tokens=1),
        job(images[1], Task.FIGURE, max_new_tokens=17),
        job(images[2], max_new_tokens=5),
    ]


def test_pages_joining_mid_decode_read_as_they_do_alone(tiny_settings, static_engine, images):
    engine = continuous(tiny_settings, max_batch_size=2, min_new_tokens=24)
    rows: list[int] = []
    engine.on_decode_step = lambda r, w: rows.append(r)
    jobs = mixed_jobs(images)
    results = [f.result(WAIT_S) for f in engine.submit(jobs)]
    assert readings(results) == alone(static_engine, jobs, min_new_tokens=24)
    assert [r.output_tokens for r in results] == [24, 3, 9, 1, 17, 5]
    # Six pages through two rows: never more than two decoded together, and two did decode together.
    assert max(rows) == 2
    assert max(r.batch_size for r in results) == 2


def test_rows_that_end_at_their_own_end_of_sequence(tiny_settings, static_engine, images):
    engine = continuous(tiny_settings, max_batch_size=3, min_new_tokens=0)
    # On this seeded checkpoint these end at once (0 tokens) or run to the cap.
    mixed = [encode(noise_image((300, 900), 1)), images[0], encode(Image.new("RGB", (300, 300), "white")), images[1]]
    jobs = [job(image) for image in mixed] + [job(mixed[0], Task.MARKDOWN), job(mixed[1], Task.FIGURE)]
    results = engine.run_batch(jobs)
    assert readings(results) == alone(static_engine, jobs, min_new_tokens=0)
    lengths = {r.output_tokens for r in results}
    assert min(lengths) < 24 and max(lengths) == 24, lengths  # some stop early, some run to the cap


def test_a_short_page_is_answered_while_a_long_one_decodes(tiny_settings, images):
    engine = continuous(tiny_settings, max_batch_size=4, min_new_tokens=24)
    paused = PausedModel(engine)
    [long_page] = paused.submit_and_hold(engine, [job(images[3], max_new_tokens=24)])
    [short_page] = engine.submit([job(images[0], max_new_tokens=2)])
    wait_until_queued(engine, 1, unless=short_page)
    paused.release.set()
    assert short_page.result(WAIT_S).output_tokens == 2
    assert not long_page.done(), "the short page waited for the long one"
    assert long_page.result(WAIT_S).output_tokens == 24
    assert 2 in paused.steps


def test_a_full_queue_is_refused_and_nothing_accepted_is_lost(tiny_settings, images):
    engine = continuous(tiny_settings, max_batch_size=1, max_waiting_pages=2)
    paused = PausedModel(engine)
    first = paused.submit_and_hold(engine, [job(images[0], max_new_tokens=4)])  # admitted: no longer waiting
    queued = engine.submit([job(images[1], max_new_tokens=4), job(images[2], max_new_tokens=4)])
    with pytest.raises(EngineBusy):
        engine.submit([job(images[3])])
    paused.release.set()
    assert [f.result(WAIT_S).error for f in first + queued] == [None] * 3
    assert engine._batcher.waiting == 0


def test_a_cancelled_page_gives_its_place_back(tiny_settings, images):
    engine = continuous(tiny_settings, max_batch_size=1, max_waiting_pages=1)
    paused = PausedModel(engine)
    [running] = paused.submit_and_hold(engine, [job(images[0], max_new_tokens=4)])
    [left] = engine.submit([job(images[1], max_new_tokens=4)])
    assert left.cancel()
    paused.release.set()
    assert running.result(WAIT_S).error is None
    [after] = engine.submit([job(images[2], max_new_tokens=4)])  # the cancelled page's place is free again
    assert after.result(WAIT_S).error is None
    assert engine._batcher.waiting == 0


class FailsOnce:
    """The model, except that its first call over ``rows`` or more pages (a prefill, or a decode step)
    raises ``error``: by default out of memory, as CUDA would."""

    def __init__(self, net, rows: int, decoding: bool, error: Exception | None = None) -> None:
        self.net, self.rows, self.decoding, self.failures = net, rows, decoding, 0
        self.error = error or torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

    def __call__(self, **inputs):
        ids = inputs["input_ids"]
        if not self.failures and ids.shape[0] >= self.rows and (ids.shape[1] == 1) == self.decoding:
            self.failures += 1
            raise self.error
        return self.net(**inputs)


@pytest.mark.parametrize("decoding", [False, True], ids=["prefill", "decode-step"])
def test_out_of_memory_sends_pages_back_and_loses_none(tiny_settings, static_engine, images, decoding):
    engine = continuous(tiny_settings, max_batch_size=5, min_new_tokens=24)
    flaky = FailsOnce(engine.net, rows=3, decoding=decoding)
    engine._batcher._net = flaky
    paused = PausedModel(engine)
    jobs = [job(images[3], max_new_tokens=24)] + [job(images[i], max_new_tokens=4 + i) for i in range(4)]
    first = paused.submit_and_hold(engine, jobs[:1])
    rest = engine.submit(jobs[1:])
    wait_until_queued(engine, 4)  # all four prepared: they are admitted (and prefilled) together
    paused.release.set()
    results = [f.result(WAIT_S) for f in first + rest]
    assert flaky.failures == 1
    assert readings(results) == alone(static_engine, jobs, min_new_tokens=24)


def test_a_failed_step_fails_its_pages_and_the_engine_serves_on(tiny_settings, images):
    engine = continuous(tiny_settings, max_batch_size=4)
    engine._batcher._net = FailsOnce(engine.net, rows=1, decoding=True, error=RuntimeError("device-side assert"))
    failed = engine.run_batch([job(images[0]), job(images[1])])
    # The pages in that step fail (a page admitted after it reads normally); none is left waiting.
    errors = [r.error for r in failed]
    assert "generation failed: RuntimeError: device-side assert" in errors
    assert set(errors) <= {None, "generation failed: RuntimeError: device-side assert"}
    [after] = engine.run_batch([job(images[2])])
    assert after.error is None and after.output_tokens >= 12


def test_v1_checkpoint_reads_the_same_continuously(tiny_v1_settings, images):
    static = create_engine(tiny_v1_settings.model_copy(update={"batching": "static"}))
    engine = create_engine(tiny_v1_settings.model_copy(update={"batching": "continuous", "max_batch_size": 2}))
    jobs = [job(images[i], max_new_tokens=limit) for i, limit in enumerate([6, 2, 4, 1])]
    assert readings(engine.run_batch(jobs)) == readings([static.run_batch([j])[0] for j in jobs])


def generate_logits(engine, page_job, tokens: int) -> list[torch.Tensor]:
    """The raw logits of every step of ``generate`` for one page alone, with the engine's own inputs."""
    from transformers import LogitsProcessorList

    from ocr_runner.images import load_image

    image = load_image(page_job.image, max_pixels=engine.settings.max_image_pixels)
    inputs = engine.inputs.prepare([image], [page_job.prompt], engine.mode(page_job))
    with torch.inference_mode():
        output = engine.net.generate(
            **engine.inputs.to_device(inputs), max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=engine.pad_id,
            eos_token_id=engine.eos_id, logits_processor=LogitsProcessorList([engine.repetition_guard]),
            output_logits=True, return_dict_in_generate=True,
        )
    return [step[0].float() for step in output.logits]


@pytest.mark.parametrize(("family", "kv_room"), [("ocr2", 0), ("ocr2", 4), ("v1", 0), ("v1", 4)])
def test_every_step_computes_the_logits_generate_does(family, kv_room, request, images, monkeypatch):
    # Equal tokens are a weak check on a tiny random model: a small error (a position id off by one
    # moved these logits by 5e-4) rarely flips a greedy pick. Compare the logits themselves.
    from ocr_runner.engines.continuous import ContinuousBatcher
    from ocr_runner.engines.kv_rows import RoomyLayer

    settings = request.getfixturevalue("tiny_settings" if family == "ocr2" else "tiny_v1_settings")
    static_engine = create_engine(settings.model_copy(update={"batching": "static", "max_new_tokens": 24}))
    seen: dict[int, list[torch.Tensor]] = {}
    advance = ContinuousBatcher._advance

    def record(self, rows, logits):
        for sequence, row in zip(rows, logits):
            seen.setdefault(id(sequence.future), []).append(row.float().clone())
        return advance(self, rows, logits)

    monkeypatch.setattr(ContinuousBatcher, "_advance", record)
    roomy_updates = []
    update = RoomyLayer.update
    monkeypatch.setattr(RoomyLayer, "update", lambda self, *a, **k: roomy_updates.append(1) or update(self, *a, **k))
    engine = continuous(settings, max_batch_size=2, min_new_tokens=24, kv_cache_room=kv_room)
    limits = [5, 12, 9]  # the third page joins when the first leaves, beside a row already decoding
    jobs = [job(images[i], max_new_tokens=limit) for i, limit in zip((3, 0, 2), limits)]
    futures = engine.submit(jobs)
    for future in futures:
        assert future.result(WAIT_S).error is None
    for future, page_job, limit in zip(futures, jobs, limits):
        expected = generate_logits(static_engine, page_job, limit)
        steps = seen[id(future)]
        assert len(steps) == len(expected) == limit
        worst = max(float((got - want).abs().max()) for got, want in zip(steps, expected))
        assert worst < 2e-5, worst
    assert bool(roomy_updates) == bool(kv_room)  # the cache with room really served the steps
