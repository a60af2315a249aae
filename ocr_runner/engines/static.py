"""The static path: a batch of pages through one ``generate`` per resolution mode.

Used with BATCHING=static (BentoML forms the batches) and as the reference continuous batching is
tested against: greedy, left-padded, with the same minimum length and repetition guard.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from transformers import LogitsProcessor

from ..images import load_image
from ..modes import ResolutionMode
from .base import EnginePage, EngineResult
from .deepseek_inputs import PreparationFailed
from .failures import failure_reason, split_on_failure
from .loops import Attempt
from .repetition import WindowedNoRepeatNGram

if TYPE_CHECKING:
    from .deepseek import DeepseekEngine

log = logging.getLogger(__name__)


def run_static(engine: DeepseekEngine, pages: list[EnginePage]) -> list[EngineResult]:
    """One result per page, in order: grouped by mode, a group split on failure before any page fails."""
    results: list[EngineResult | None] = [None] * len(pages)
    groups: dict[ResolutionMode, list[tuple[int, Any]]] = defaultdict(list)
    for index, page in enumerate(pages):
        try:
            image = load_image(page.image, max_pixels=engine.settings.max_image_pixels)
        except Exception as exc:  # noqa: BLE001 - a bad item fails alone
            results[index] = engine.input_error(exc)
            continue
        groups[engine.mode(page)].append((index, image))

    def done(members, answers: list[EngineResult]) -> None:
        for (index, _), result in zip(members, answers):
            results[index] = result

    def alone_failed(member, exc: Exception) -> None:
        if isinstance(exc, PreparationFailed):
            results[member[0]] = engine.input_error(exc)
            return
        log.error("DeepSeek generation failed", exc_info=exc)
        results[member[0]] = engine.failed(f"generation failed: {failure_reason(exc)}")

    for mode, members in groups.items():
        def run(group, mode=mode):
            return read_pages(engine, mode, [pages[i] for i, _ in group], [image for _, image in group])

        split_on_failure(members, run, done, alone_failed)
    return [r if r is not None else engine.failed("no result produced") for r in results]


def read_pages(engine: DeepseekEngine, mode: ResolutionMode, pages: list[EnginePage],
               images: list[Any]) -> list[EngineResult]:
    """Same-mode pages through ``generate``; the ones that loop once more with the stricter guard (``loops``)."""
    attempts, elapsed_ms = generate(engine, mode, pages, images)
    loops = engine.loops
    again = [i for i, attempt in enumerate(attempts) if loops.needs_retry(attempt)]
    retries: dict[int, Attempt] = {}
    if again:
        retried, retry_ms = generate(engine, mode, [pages[i] for i in again], [images[i] for i in again],
                                     guard=loops.retry_guard)
        retries = dict(zip(again, retried))
        elapsed_ms += retry_ms
    results = []
    for i, attempt in enumerate(attempts):
        tokens, repetition = loops.outcome(attempt, retries.get(i))
        results.append(engine.page_result(mode, tokens, len(pages), elapsed_ms, repetition))
    return results


def generate(engine: DeepseekEngine, mode: ResolutionMode, pages: list[EnginePage], images: list[Any],
             guard: WindowedNoRepeatNGram | None = None) -> tuple[list[Attempt], float]:
    """One ``generate`` over same-mode pages (with ``guard``, else the engine's); raises what preparation or
    the model raises."""
    import torch
    from transformers import LogitsProcessorList

    settings = engine.settings
    limits = [engine.token_limit(page) for page in pages]
    inputs = engine.inputs.prepare(images, [page.prompt for page in pages], mode)
    prompt_len = inputs["input_ids"].shape[1]
    generation: dict[str, Any] = {
        "max_new_tokens": max(limits),
        "do_sample": False,
        "pad_token_id": engine.pad_id,
        "eos_token_id": engine.eos_id,
    }
    guard = guard or engine.repetition_guard
    counting = CountingGuard(guard, prompt_len) if guard is not None else None
    if counting is not None:
        generation["logits_processor"] = LogitsProcessorList([counting])
    if settings.min_new_tokens:
        generation["min_new_tokens"] = min(settings.min_new_tokens, max(limits))
    started = time.perf_counter()
    with engine.model_lock, torch.inference_mode():  # the model serves one batch at a time, vision encoder included
        output = engine.net.generate(**engine.inputs.to_device(inputs), **generation)
    elapsed_ms = (time.perf_counter() - started) * 1000
    attempts = []
    for row, (tokens, limit) in enumerate(zip(output[:, prompt_len:].tolist(), limits)):
        tokens = until_eos(tokens, engine.eos_id)[:limit]
        hits = counting.hits(row, len(tokens)) if counting is not None else 0
        attempts.append(Attempt(tokens, limit, hits))
    return attempts, elapsed_ms


class CountingGuard(LogitsProcessor):
    """The repetition guard inside ``generate``, remembering at which step it intervened on which row
    (a row that has ended keeps being padded: its later steps do not count)."""

    def __init__(self, guard: WindowedNoRepeatNGram, prompt_len: int) -> None:
        self.guard, self.prompt_len = guard, prompt_len
        self._steps: dict[int, list[int]] = {}

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_len
        for row in self.guard.ban(input_ids[:, -self.guard.window :].tolist(), scores):
            self._steps.setdefault(row, []).append(step)
        return scores

    def hits(self, row: int, generated: int) -> int:
        return sum(1 for step in self._steps.get(row, ()) if step < generated)


def until_eos(tokens: list[int], eos_id: int | None) -> list[int]:
    if eos_id is not None and eos_id in tokens:
        return tokens[: tokens.index(eos_id)]
    return tokens
