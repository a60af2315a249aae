"""The DeepSeek engine's side of continuous batching: pages into the batcher, results out of it.

The batcher (``continuous``) knows sequences and a model's forward; this turns an ``EnginePage``
into a ready sequence (on the preprocessing threads, so the model's thread only sees ready
inputs) and implements the batcher's ``PageHandler``: encode a group, answer or fail a page.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..images import load_image
from .base import EnginePage, EngineResult
from .continuous import ContinuousBatcher, PageSequence
from .deepseek_inputs import concat_left_padded
from .loops import Attempt

if TYPE_CHECKING:
    from .deepseek import DeepseekEngine


class ContinuousPages:
    """Submits pages to a ``ContinuousBatcher`` that it owns, and is that batcher's ``PageHandler``."""

    def __init__(self, engine: DeepseekEngine) -> None:
        settings, guard = engine.settings, engine.repetition_guard
        self.engine = engine
        self.batcher = ContinuousBatcher(
            engine.net, self,
            eos_id=engine.eos_id, max_rows=settings.max_batch_size, max_admit=settings.prefill_batch_pages,
            kv_room=engine.kv_cache_room,
            max_waiting=settings.max_waiting_pages or 16 * settings.max_batch_size,
            guard=guard,
        )

    def submit(self, pages: list[EnginePage]) -> list[Future]:
        futures: list[Future] = [Future() for _ in pages]
        self.batcher.reserve(futures)
        for page, future in zip(pages, futures):
            self.engine.inputs.pool.submit(self._prepare, page, future)
        return futures

    def _prepare(self, page: EnginePage, future: Future) -> None:
        engine = self.engine
        mode = engine.mode(page)
        try:
            image = load_image(page.image, max_pixels=engine.settings.max_image_pixels)
            inputs = engine.inputs.prepare([image], [page.prompt], mode)
        except Exception as exc:  # noqa: BLE001 - a bad page fails alone
            answer(future, engine.input_error(exc))
            return
        prompt_ids = inputs["input_ids"][0].tolist()
        self.batcher.enqueue(
            PageSequence(inputs, mode, engine.token_limit(page), engine.settings.min_new_tokens, prompt_ids, future)
        )

    # -- PageHandler ---------------------------------------------------------------------------

    def encode(self, group: list[PageSequence]) -> dict[str, Any]:
        return self.engine.inputs.to_device(concat_left_padded([s.inputs for s in group], self.engine.pad_id))

    def finish(self, sequence: PageSequence, elapsed_ms: float) -> None:
        """Answer the page, or, the first time it loops, queue it once more with the stricter guard (``loops``)."""
        loops = self.engine.loops
        attempt = Attempt(list(sequence.generated), sequence.limit, sequence.guard_hits)
        if sequence.first_attempt is None and loops.needs_retry(attempt):
            if not sequence.future.cancelled():
                self.batcher.enqueue(replace(
                    sequence, generated=[], position=0, peak_rows=0, finished=False, guard=loops.retry_guard,
                    guard_hits=0, first_attempt=(attempt, elapsed_ms),
                ))
            return
        if sequence.first_attempt is not None:
            first, first_ms = sequence.first_attempt
            tokens, repetition = loops.outcome(first, attempt)
            elapsed_ms += first_ms
        else:
            tokens, repetition = loops.outcome(attempt, None)
        result = self.engine.page_result(sequence.mode, tokens, sequence.peak_rows, elapsed_ms, repetition)
        answer(sequence.future, result)

    def fail(self, sequence: PageSequence, reason: str) -> None:
        answer(sequence.future, self.engine.failed(f"generation failed: {reason}"))

    def on_step(self, rows: int, waiting: int) -> None:
        if self.engine.on_decode_step is not None:
            self.engine.on_decode_step(rows, waiting)


def answer(future: Future, result: EngineResult) -> None:
    """Set a page's result unless its caller has cancelled it meanwhile."""
    if not future.cancelled():
        try:
            future.set_result(result)
        except Exception:  # noqa: BLE001 - cancelled between the check and the set
            pass
