"""A batch that fails is split before any page in it is failed, in the static and continuous paths alike.

One bad page (an image the processor rejects, a prompt that trips the model) or a batch too big for
the GPU must not fail the pages beside it: the batch is halved and each half tried again, until
the page at fault stands alone. What a lone failure means is the caller's to say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

log = logging.getLogger(__name__)


def split_on_failure(
    items: Sequence[Item],
    run: Callable[[Sequence[Item]], Outcome],
    done: Callable[[Sequence[Item], Outcome], None],
    alone_failed: Callable[[Item, Exception], None],
    what: str = "batch",
) -> None:
    """``run`` the items together and hand ``done`` what it returns; if ``run`` raises, try each half
    the same way (first half first), down to single items, whose failure goes to ``alone_failed``.

    Out of memory empties the CUDA allocator's cache before the retry. ``done`` runs outside the
    guard: what it raises is not a batch failure and propagates.
    """
    try:
        outcome = run(items)
    except Exception as exc:  # noqa: BLE001 - isolate the item at fault instead of failing them all
        if is_out_of_memory(exc):
            import torch

            torch.cuda.empty_cache()
        if len(items) == 1:
            alone_failed(items[0], exc)
            return
        half = len(items) // 2
        log.warning("%s of %d failed (%s); retrying as %d + %d", what, len(items), exc, half, len(items) - half)
        split_on_failure(items[:half], run, done, alone_failed, what)
        split_on_failure(items[half:], run, done, alone_failed, what)
        return
    done(items, outcome)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def failure_reason(exc: BaseException) -> str:
    """What a page that failed with ``exc`` is told."""
    return "out of GPU memory" if is_out_of_memory(exc) else f"{exc.__class__.__name__}: {exc}"
