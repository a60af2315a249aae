"""Fan a document's pages out to the engine and gather the answers (no HTTP here).

The engine call is injected (``infer``): in the service it is BentoML's call to the
batched engine service; in tests it can be an engine run in-process. Pages are sent
concurrently, so a 40-page PDF fills the engine's batches instead of queuing page
by page, and other clients' pages interleave with them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .cache import ResultCache
from .engines.base import EngineJob, EngineResult
from .errors import OCRError
from .pipeline import DocumentRequest, PageOutcome, PreparedDocument, PreparedPage, assemble, error_response, page_result, prepare
from .schemas import OCRResponse, PageResult
from .settings import Settings

Infer = Callable[[EngineJob], Awaitable[EngineResult]]
ProgressCallback = Callable[[int, int], None]


class Orchestrator:
    def __init__(self, settings: Settings, infer: Infer, cache: ResultCache | None = None) -> None:
        self.settings = settings
        self._infer = infer
        self.cache = cache

    async def prepare(self, request: DocumentRequest) -> PreparedDocument:
        # PDF rendering and image decoding are CPU work: keep them off the event loop.
        return await asyncio.to_thread(prepare, self.settings, request)

    async def run(self, request: DocumentRequest, on_progress: ProgressCallback | None = None) -> OCRResponse:
        document = await self.prepare(request)
        return await self.run_prepared(document, on_progress)

    async def run_prepared(self, document: PreparedDocument, on_progress: ProgressCallback | None = None) -> OCRResponse:
        done = 0
        total = len(document.pages)

        async def tracked(page: PreparedPage) -> PageOutcome:
            nonlocal done
            outcome = await self.run_page(page)
            done += 1
            if on_progress is not None:
                on_progress(done, total)
            return outcome

        outcomes = await asyncio.gather(*(tracked(page) for page in document.pages))
        return assemble(document, list(outcomes))

    async def stream(self, document: PreparedDocument) -> AsyncIterator[PageResult | OCRResponse]:
        """Each page's result as soon as it finishes, then the assembled response (or its error)."""
        async def indexed(index: int, page: PreparedPage) -> tuple[int, PageOutcome]:
            return index, await self.run_page(page)

        tasks = [asyncio.ensure_future(indexed(i, page)) for i, page in enumerate(document.pages)]
        outcomes: list[PageOutcome | None] = [None] * len(tasks)
        try:
            for next_done in asyncio.as_completed(tasks):
                index, outcome = await next_done
                outcomes[index] = outcome
                yield page_result(document.task, document.pages[index], outcome, link_images=document.include_images)
        finally:
            for task in tasks:
                task.cancel()
        try:
            yield assemble(document, [o for o in outcomes if o is not None])
        except OCRError as exc:
            yield error_response(exc)

    async def run_many(self, requests: list[DocumentRequest | OCRError]) -> list[tuple[OCRResponse, int]]:
        """Independent documents in order, each with its HTTP status; one failing leaves the rest."""

        async def one(request: DocumentRequest | OCRError) -> tuple[OCRResponse, int]:
            try:
                if isinstance(request, OCRError):
                    raise request
                return await self.run(request), 200
            except OCRError as exc:
                return error_response(exc), exc.status

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def run_page(self, page: PreparedPage) -> PageOutcome:
        started = time.perf_counter()
        if self.cache is not None and (cached := self.cache.get(page.job)) is not None:
            return PageOutcome(cached, None, 0.0, cache_hit=True)
        try:
            result = await self._infer(page.job)
        except OCRError as exc:
            return PageOutcome(None, exc, (time.perf_counter() - started) * 1000)
        if self.cache is not None:
            self.cache.put(page.job, result)
        return PageOutcome(result, None, (time.perf_counter() - started) * 1000)
