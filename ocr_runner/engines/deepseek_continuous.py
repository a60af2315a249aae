"""The DeepSeek engine's side of continuous batching: pages into the batcher, results out of it.

The batcher (``continuous``) knows sequences and a model's forward; this turns an ``EnginePage``
into a ready sequence (on the preprocessing threads, so the model's thread only sees ready
inputs) and implements the batcher's ``PageHandler``: encode a group, answer or fail a page.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..images import load_image
from .base import EnginePage, EngineResult
from .continuous import ContinuousBatcher, PageSequence
from .deepseek_inputs import concat_left_padded

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
            guard=guard.block if guard else None, guard_window=guard.window if guard else 0,
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
        result = self.engine.page_result(sequence.mode, sequence.generated, sequence.peak_rows, elapsed_ms)
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
