"""Fan a document's pages out to the engine and gather the answers (no HTTP here).

The engine call is injected (``infer``): in the service it is BentoML's call to the
batched engine service; in tests it can be an engine run in-process. Pages are sent
concurrently, so a 40-page PDF fills the engine's batches instead of queuing page
by page, and other clients' pages interleave with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .cache import ResultCache
from .engines.base import EnginePage, EngineResult
from .errors import EngineItemFailed, Interrupted, OCRError, Overloaded, PayloadTooLarge
from .pipeline import DocumentRequest, PageOutcome, PreparedDocument, PreparedPage, assemble, page_result, prepare
from .schemas import OCRResponse, PageResult
from .settings import Settings

log = logging.getLogger(__name__)
# Jobs wait out engine overload (about ten minutes in all) instead of failing pages.
PATIENT_BACKOFF_S = (1, 2, 4, 8, 15, 30, 60, 60, 120, 120, 180)
Infer = Callable[[EnginePage], Awaitable[EngineResult]]
ProgressCallback = Callable[[int, int], None]
PageStartCallback = Callable[[int], Awaitable[None]]  # a page's index, as its read starts
PageCallback = Callable[[int, "PageOutcome"], Awaitable[None]]  # a page's index and outcome, as it finishes


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

    def page_slots(self) -> asyncio.Semaphore:
        """Pages one request may have at the engine at once: enough to fill two batches."""
        return asyncio.Semaphore(self.settings.max_pages_in_flight or 2 * self.settings.max_batch_size)

    async def run_prepared(
        self,
        document: PreparedDocument,
        on_progress: ProgressCallback | None = None,
        *,
        slots: asyncio.Semaphore | None = None,
        patient: bool = False,
        done: dict[int, PageOutcome] | None = None,
        on_page_start: PageStartCallback | None = None,
        on_page: PageCallback | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> OCRResponse:
        """Read every page. ``patient`` (jobs) waits out engine overload instead of failing pages.

        Jobs resume with the pages read before (``done``, by index), store each page as it finishes
        (``on_page``, awaited before the page counts as done) and, once ``stopping`` says so, start
        no more pages: the pages in flight finish, then ``Interrupted`` is raised.
        """
        outcomes: dict[int, PageOutcome] = dict(done or {})
        total = len(document.pages)
        slots = slots or self.page_slots()
        skipped = False

        async def tracked(index: int, page: PreparedPage) -> None:
            nonlocal skipped
            async with slots:
                if stopping is not None and stopping():
                    skipped = True
                    return
                if on_page_start is not None:
                    await on_page_start(index)
                outcome = await self.run_page(page, patient=patient)
            if on_page is not None:
                await on_page(index, outcome)
            outcomes[index] = outcome
            if on_progress is not None:
                on_progress(len(outcomes), total)

        tasks = [asyncio.ensure_future(tracked(i, page)) for i, page in enumerate(document.pages) if i not in outcomes]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # one page's failure to store (the job was cancelled) stops the others
                task.cancel()
        if skipped:
            raise Interrupted(f"stopped with {len(outcomes)} of {total} pages read")
        return assemble(document, [outcomes[i] for i in range(total)])

    async def stream(self, document: PreparedDocument) -> AsyncIterator[PageResult | OCRResponse | OCRError]:
        """Each page's result as soon as it finishes, then the assembled response (or its error)."""
        slots = self.page_slots()

        async def indexed(index: int, page: PreparedPage) -> tuple[int, PageOutcome]:
            async with slots:
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
            yield exc

    async def run_many(self, requests: list[DocumentRequest | OCRError]) -> list[OCRResponse | OCRError]:
        """Independent documents in order, each answered or with its error; one failing leaves the rest.

        Raises ``PayloadTooLarge`` when the documents together select more pages than one
        request may (``max_pdf_pages``); all of them share one request's page slots.
        """

        async def prepared(request: DocumentRequest | OCRError) -> PreparedDocument | OCRError:
            if isinstance(request, OCRError):
                return request
            try:
                return await self.prepare(request)
            except OCRError as exc:
                return exc
            except Exception:  # noqa: BLE001 - one item's bug must not fail the others
                log.exception("batch item could not be prepared")
                return EngineItemFailed("internal error on this item")

        documents = [await prepared(r) for r in requests]
        pages = sum(len(d.pages) for d in documents if isinstance(d, PreparedDocument))
        if pages > self.settings.max_pdf_pages:
            raise PayloadTooLarge(
                f"the batch selects {pages} pages, over the limit of {self.settings.max_pdf_pages} per request",
                field="items",
            )
        slots = self.page_slots()

        async def one(document: PreparedDocument | OCRError) -> OCRResponse | OCRError:
            if isinstance(document, OCRError):
                return document
            try:
                return await self.run_prepared(document, slots=slots)
            except OCRError as exc:
                return exc
            except Exception:  # noqa: BLE001 - one item's bug must not fail the others
                log.exception("batch item failed")
                return EngineItemFailed("internal error on this item")

        return list(await asyncio.gather(*(one(d) for d in documents)))

    async def run_page(self, page: PreparedPage, *, patient: bool = False) -> PageOutcome:
        started = time.perf_counter()
        if self.cache is not None and (cached := self.cache.get(page.engine_page)) is not None:
            return PageOutcome(cached, None, 0.0, cache_hit=True)
        delays = iter(PATIENT_BACKOFF_S if patient else ())
        while True:
            try:
                result = await self._infer(page.engine_page)
                break
            except Overloaded as exc:
                delay = next(delays, None)
                if delay is None:
                    return PageOutcome(None, exc, (time.perf_counter() - started) * 1000)
                await asyncio.sleep(delay)
            except OCRError as exc:
                return PageOutcome(None, exc, (time.perf_counter() - started) * 1000)
        if self.cache is not None:
            self.cache.put(page.engine_page, result)
        return PageOutcome(result, None, (time.perf_counter() - started) * 1000)
