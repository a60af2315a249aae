"""Pages that loop: detected, read once more with a stricter guard, and cut if they still loop.

Repetition loops are DeepSeek-OCR's most reported failure (9.2 % of 600 newspaper pages in
DeepSeek-OCR #151; 4.17 % in production per the OCR-2 paper). The windowed n-gram guard blocks
exact repeats, but a page can still loop past it, in blocks longer than its n-gram or with small
variations, until the token cap. A page is looping when it stops at its cap with a repeating tail,
or when the guard had to intervene ``GUARD_HITS`` times or more. Greedy stays the first try; the
retry bans much shorter repeats over a much longer window (``<td>``/``</td>`` still exempt, so
tables survive); what still loops then keeps one copy of the repeated block. Both batching
paths (``static``, ``deepseek_continuous``) call this, so a page is handled the same way in each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..settings import Settings
from .base import PageRepetition
from .repetition import WindowedNoRepeatNGram, repeating_tail

GUARD_HITS = 4  # guard interventions on one page that make it looping even when it ended by itself


@dataclass(frozen=True)
class Attempt:
    """One reading of a page: its tokens (end-of-sequence excluded), its cap, and the guard's interventions."""

    tokens: list[int]
    limit: int
    guard_hits: int = 0


class LoopHandling:
    def __init__(self, settings: Callable[[], Settings], exempt: list[int]) -> None:
        self._settings = settings  # read at every page: tests and benchmarks change them on a running engine
        n = settings().no_repeat_ngram_size or 30
        window = max(settings().no_repeat_window, n)
        self.retry_guard = WindowedNoRepeatNGram(max(3, n // 3), max(3 * window, 256), exempt)
        self.how = (f"greedy again with a stricter guard: no repeated {self.retry_guard.ngram_size}-gram "
                    f"in the last {self.retry_guard.window} tokens")

    @property
    def enabled(self) -> bool:
        settings = self._settings()
        return settings.repetition_retry and not settings.min_new_tokens  # forced lengths always hit the cap

    def looping(self, attempt: Attempt) -> str | None:
        """Why ``attempt`` counts as looping, or None."""
        if not self.enabled:
            return None
        if len(attempt.tokens) >= attempt.limit and repeating_tail(attempt.tokens) is not None:
            return "stopped at its token cap with a repeating tail"
        if attempt.guard_hits >= GUARD_HITS:
            return f"the repetition guard intervened {attempt.guard_hits} times"
        return None

    def needs_retry(self, attempt: Attempt) -> bool:
        return self.looping(attempt) is not None

    def outcome(self, first: Attempt, retry: Attempt | None) -> tuple[list[int], PageRepetition | None]:
        """The tokens to answer with and what the response says: the first reading untouched unless it looped."""
        reason = self.looping(first)
        if reason is None:
            return first.tokens, None
        if retry is None:  # not retried (should not happen): cut the first reading
            tokens, trimmed = trim(first.tokens)
            return tokens, PageRepetition(detected=True, reason=reason, retried=False, trimmed=trimmed > 0,
                                          trimmed_tokens=trimmed)
        if self.looping(retry) is None:
            return retry.tokens, PageRepetition(detected=True, reason=reason, retried=True, how=self.how,
                                                recovered=True)
        tokens, trimmed = trim(retry.tokens)
        return tokens, PageRepetition(detected=True, reason=reason, retried=True, how=self.how, recovered=False,
                                      trimmed=trimmed > 0, trimmed_tokens=trimmed)


def trim(tokens: list[int]) -> tuple[list[int], int]:
    """``tokens`` with a repeating tail cut to one copy of its block, and how many tokens were cut."""
    tail = repeating_tail(tokens)
    if tail is None:
        return tokens, 0
    start, period = tail
    return tokens[: start + period], len(tokens) - start - period
