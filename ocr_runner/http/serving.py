"""What each route does, below BentoML's decorators and above the orchestrator.

``service.py`` declares the routes and hands every request here. A route's body arrives as
one of the ``options`` models; this layer decodes the document, runs it through the
orchestrator (or the job store), counts and logs it, and turns errors into answers through
the one table in ``http.errors``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from ..cache import ResultCache
from ..engines.base import EngineHealth, EnginePage, EngineResult
from ..engines.plan import EnginePlan
from ..errors import OCRError, UnprocessableRequest
from ..fetch import UrlFetcher
from ..images import decode_base64
from ..jobs import JobStore
from ..options import TaskDocument, options_of
from ..orchestrator import Orchestrator
from ..pipeline import DocumentRequest
from ..schemas import BatchResponse, HealthResponse, OCRResponse
from ..settings import Settings
from ..tasks import Task, parse_task
from . import responses
from .disconnect import until_disconnected
from .engine_client import EngineCaller
from .errors import json_error, respond_error, set_error_status, status_for
from .metrics import ocr_metrics

log = logging.getLogger("ocr_runner.service")
EngineCall = Callable[[list[EnginePage]], Awaitable[list[EngineResult]]]
HealthCall = Callable[[], Awaitable[EngineHealth]]


class OCRServing:
    """The service's behaviour, one method per route; knows HTTP statuses, not BentoML decorators."""

    def __init__(self, settings: Settings, plan: EnginePlan, infer: EngineCall, engine_health: HealthCall) -> None:
        self.settings = settings
        self.plan = plan
        self.metrics = ocr_metrics()
        cache = ResultCache(settings.cache_max_bytes) if settings.cache_enabled else None
        self.orchestrator = Orchestrator(settings, EngineCaller(infer, self.metrics.engine_inflight), cache)
        self.jobs = JobStore(
            Path(settings.jobs_dir), ttl_s=settings.job_ttl_s, max_active=settings.max_active_jobs,
            on_failed=lambda code: self.metrics.count_error(code.value, status_for(code)),
        )
        self._engine_health = engine_health
        self.fetcher = UrlFetcher(settings)

    # -- task endpoints ------------------------------------------------------------------------

    async def document(self, ctx: Any, task: Task, body: Any) -> Any:
        """One document (an image or a PDF) for a task endpoint: its ``OCRResponse``, or an error answer."""
        try:
            request = await self.request_for(task, body)
            return await until_disconnected(ctx, self._observed(request))
        except OCRError as exc:
            return respond_error(ctx, exc)

    async def batch(self, ctx: Any, items: list[TaskDocument]) -> Any:
        try:
            if not 1 <= len(items) <= self.settings.max_batch_items:
                raise UnprocessableRequest(
                    f"items must hold 1 to {self.settings.max_batch_items} documents", field="items"
                )
            requests = await asyncio.gather(*(self._task_request(item) for item in items))
            answers = await until_disconnected(ctx, self.orchestrator.run_many(list(requests)))
        except OCRError as exc:
            return respond_error(ctx, exc)
        results = [responses.batch_item(answer) for answer in answers]
        return BatchResponse(success=all(r.success for r in results), results=results)

    async def stream(self, ctx: Any, body: TaskDocument) -> AsyncIterator[str]:
        started = time.perf_counter()
        try:
            request = await self.request_for(parse_task(body.task), body)
            document = await self.orchestrator.prepare(request)
        except OCRError as exc:
            # Before the first line: BentoML reads the first chunk before it sends the status, so
            # this answer carries the error's status (and the error counter counts it).
            set_error_status(ctx, exc)
            yield responses.stream_line(exc)
            return
        ctx.response.headers["Content-Type"] = "application/x-ndjson"
        async for item in self.orchestrator.stream(document):
            if isinstance(item, OCRResponse):
                self._answered(request, item, started)
            yield responses.stream_line(item)

    async def upload(self, data: bytes | None, options: Any) -> Any:
        """``/upload-ocr``: the file's bytes (or the form's ``document_url``) and the form's options."""
        from starlette.responses import JSONResponse

        try:
            task = parse_task(options.task)
            if (data is None) == (options.document_url is None):
                raise UnprocessableRequest("send a file, or a document_url instead of one", field="file")
            if data is None:
                request = await self.request_for(task, options)
            else:
                request = DocumentRequest(task, data, options_of(options), field="file")
            return JSONResponse((await self._observed(request)).model_dump())
        except OCRError as exc:
            return json_error(exc)

    # -- jobs ----------------------------------------------------------------------------------

    async def submit_job(self, body: TaskDocument) -> Any:
        """Validate the document now (4xx at once), then read it in the background."""
        from starlette.responses import JSONResponse

        try:
            request = await self.request_for(parse_task(body.task), body)
            self.jobs.ensure_capacity()  # before the (possibly long) rendering of every page
            document = await self.orchestrator.prepare(request)
            record = self.jobs.submit(
                request.task.value,
                len(document.pages),
                lambda progress: self.orchestrator.run_prepared(document, progress, patient=True),
            )
        except OCRError as exc:
            return json_error(exc)
        return JSONResponse(responses.job_status(record).model_dump(), status_code=202)

    def job(self, job_id: str, *, cancel: bool = False) -> Any:
        from starlette.responses import JSONResponse

        try:
            record = self.jobs.cancel(job_id) if cancel else self.jobs.get(job_id)
        except OCRError as exc:
            return json_error(exc)
        return JSONResponse(responses.job_status(record).model_dump())

    def job_result(self, job_id: str) -> Any:
        from starlette.responses import JSONResponse

        try:
            record = self.jobs.get(job_id)
        except OCRError as exc:
            return json_error(exc)
        body, status = responses.job_result(record)
        return JSONResponse(body, status_code=status)

    # -- health --------------------------------------------------------------------------------

    async def health(self) -> Any:
        from starlette.responses import JSONResponse

        try:
            facts = await self._engine_health()
        except Exception as exc:  # noqa: BLE001 - health must answer, not raise
            log.warning("engine health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "error": "the OCR engine is not reachable"}, status_code=503)
        self.metrics.engine_degraded.set(1 if facts.degraded else 0)
        status = "degraded" if facts.degraded else "ok"  # a GPU host serving the CPU engine: answers, but says so
        return JSONResponse(HealthResponse(status=status, **facts.model_dump()).model_dump())

    # -- internals -----------------------------------------------------------------------------

    async def request_for(self, task: Task, body: Any) -> DocumentRequest:
        """The document of a request model (inline, or fetched from its URL) with its options."""
        if getattr(body, "document_url", None) is not None:
            data = await self.fetcher.fetch(body.document_url)
            return DocumentRequest(task, data, options_of(body), field="document_url")
        return DocumentRequest(task, decode_base64(body.image_base64), options_of(body))

    async def _task_request(self, item: TaskDocument) -> DocumentRequest | OCRError:
        """A batch item with its own task; its error in its place."""
        try:
            return await self.request_for(parse_task(item.task), item)
        except OCRError as exc:
            return exc

    async def _observed(self, request: DocumentRequest) -> OCRResponse:
        """Run one document, counting its pages and tokens (callers count errors)."""
        started = time.perf_counter()
        response = await self.orchestrator.run(request)
        self._answered(request, response, started)
        return response

    def _answered(self, request: DocumentRequest, response: OCRResponse, started: float) -> None:
        """Count a finished document's pages and tokens, and log one line for it."""
        self.metrics.record(response)
        meta = response.metadata
        log.info(
            "document answered",
            extra={
                "task": request.task.value, "success": response.success,
                "pages": len(meta.pages_selected) if meta else 0, "failed_pages": len(meta.failed_pages) if meta else 0,
                "engine": meta.engine if meta else None, "ms": round(1000 * (time.perf_counter() - started), 1),
            },
        )

