"""A bound on the pages an engine without a queue limit of its own has waiting or running.

The CPU engine reads one page at a time; without a bound, a burst waits minutes in BentoML's
thread pool instead of being told to come back. Past ``limit`` pages, a call is refused at once
(``EngineBusy``: the API answers 503 with Retry-After, and jobs wait it out). The engine service's
event loop is the only caller, so a plain counter is enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .engines.base import EngineBusy


class Admission:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0

    @contextmanager
    def enter(self, pages: int) -> Iterator[None]:
        if self.inside + pages > self.limit:
            raise EngineBusy(
                f"{self.inside} pages are already waiting for the engine (limit {self.limit}); retry shortly"
            )
        self.inside += pages
        try:
            yield
        finally:
            self.inside -= pages
