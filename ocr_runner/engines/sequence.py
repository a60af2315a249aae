"""What passes between an engine and the continuous batcher: a page's sequence, and the handler
that turns sequences into model inputs and answers them. Kept apart so both sides (and tests
with a stand-in model) depend on these two types, not on each other.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(eq=False)
class PageSequence:
    """One page on its way through the running batch."""

    inputs: Any  # the page's processor output, on the CPU
    mode: Any  # the effective resolution mode; pages of one mode share a prefill
    limit: int  # most tokens to generate
    min_new_tokens: int  # end-of-sequence is not allowed before this many (benchmarks force lengths)
    prompt_ids: list[int]  # the prompt without padding: the repetition guard's first history
    future: Future
    generated: list[int] = field(default_factory=list)
    position: int = 0  # position id of the next token fed to the model: real tokens in the cache
    admitted_at: float = 0.0
    peak_rows: int = 0
    finished: bool = False
    guard: Any = None  # this page's repetition guard when not the batcher's (a retry's stricter one)
    guard_hits: int = 0  # decode steps on which the guard banned the token this page would have picked
    first_attempt: Any = None  # a retry's first reading (``loops.Attempt``)

    def restart(self) -> None:
        """Back to the queue with nothing generated (greedy, so it reads the same the second time)."""
        self.generated.clear()
        self.finished = False
        self.guard_hits = 0


class PageHandler(Protocol):
    """What the batcher needs from the engine whose pages it decodes (it calls these on its own thread)."""

    def encode(self, group: list[PageSequence]) -> dict[str, Any]:
        """Same-mode pages as model inputs on the device, vision features included, left-padded."""

    def finish(self, sequence: PageSequence, elapsed_ms: float) -> None:
        """Answer a page's future from its generated tokens."""

    def fail(self, sequence: PageSequence, reason: str) -> None:
        """Answer a page's future with an error."""

    def on_step(self, rows: int, waiting: int) -> None:
        """After every decode step: rows decoded, pages waiting."""
