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
from typing import Any

from cachetools import TTLCache
from starlette.responses import JSONResponse

from ..cache import ResultCache
from ..engines.base import EngineHealth, EnginePage, EngineResult
from ..engines.plan import EnginePlan
from ..errors import OCRError, UnprocessableRequest
from ..fetch import UrlFetcher
from ..images import decode_base64
from ..jobs import JobRecord, JobRun, JobSpec, JobState, create_store
from ..options import JobRequest, LocateOptions, TaskDocument, options_of
from ..orchestrator import Orchestrator
from ..pipeline import DocumentRequest, PageOutcome, PreparedDocument
from ..schemas import BatchResponse, HealthResponse, OCRResponse
from ..settings import Settings
from ..tasks import Task, parse_task
from ..webhooks import WebhookSender
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
        self.jobs = create_store(
            settings,
            on_failed=lambda code: self.metrics.count_error(code.value, status_for(code)),
            on_finished=self._job_finished,
        )
        self.webhooks = WebhookSender(settings)
        # Documents this server prepared at submit, so that its own first attempt does not render them again.
        self._prepared: TTLCache[str, PreparedDocument] = TTLCache(maxsize=32, ttl=600)
        self.engine_health = engine_health
        self.fetcher = UrlFetcher(settings)

    # -- task endpoints ------------------------------------------------------------------------

    async def document(self, ctx: Any, task: Task, body: Any) -> Any:
        """One document (an image or a PDF) for a task endpoint: its ``OCRResponse``, or an error answer."""
        try:
            request = await self.request_for(task, body)
            return await until_disconnected(ctx, self.read(request))
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
                self.record(request, item, started)
            yield responses.stream_line(item)

    async def upload(self, data: bytes | None, options: Any) -> Any:
        """``/upload-ocr``: the file's bytes (or the form's ``document_url``) and the form's options."""
        try:
            task = parse_task(options.task)
            if (data is None) == (options.document_url is None):
                raise UnprocessableRequest("send a file, or a document_url instead of one", field="file")
            if data is None:
                request = await self.request_for(task, options)
            else:
                request = DocumentRequest(task, data, options_of(options), field="file")
            return JSONResponse((await self.read(request)).model_dump())
        except OCRError as exc:
            return json_error(exc)

    # -- jobs ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Server start: run queued jobs (and resume those a previous start left unfinished)."""
        await self.jobs.start(self._run_job)

    async def close(self) -> None:
        """Shutdown: no new jobs; pages in flight finish up to SHUTDOWN_GRACE_S; the rest is handed back."""
        await self.jobs.close(self.settings.shutdown_grace_s)
        await self.webhooks.close()

    async def submit_job(self, body: JobRequest, owner: str | None = None) -> Any:
        """Validate the document now (4xx at once), then read it in the background."""
        try:
            request = await self.request_for(parse_task(body.task), body)
            if body.callback_url is not None:
                await self.webhooks.check(body.callback_url)
            await self.jobs.ensure_capacity()  # before the (possibly long) rendering of every page
            document = await self.orchestrator.prepare(request)
            spec = JobSpec(task=request.task.value, options=request.options.model_dump(mode="json"),
                           field=request.field, data=request.data)
            record = await self.jobs.submit(spec, len(document.pages), owner=owner, callback_url=body.callback_url)
            self._prepared[record.job_id] = document
        except OCRError as exc:
            return json_error(exc)
        return JSONResponse(responses.job_status(record).model_dump(), status_code=202)

    async def job(self, job_id: str, owner: str | None = None, *, cancel: bool = False) -> Any:
        try:
            record = await (self.jobs.cancel(job_id, owner) if cancel else self.jobs.get(job_id, owner))
        except OCRError as exc:
            return json_error(exc)
        return JSONResponse(responses.job_status(record).model_dump())

    async def job_result(self, job_id: str, owner: str | None = None) -> Any:
        try:
            record = await self.jobs.get(job_id, owner, with_result=True)
        except OCRError as exc:
            return json_error(exc)
        body, status = responses.job_result(record)
        return JSONResponse(body, status_code=status)

    async def _run_job(self, run: JobRun) -> dict[str, Any]:
        """One attempt at a job (the store's executor): prepare its document, read the pages not read yet."""
        from ..jobs.pages import page_from_json, page_to_json

        job_id = run.record.job_id
        document = self._prepared.pop(job_id, None)
        if document is None:  # another replica took it, or this one restarted: prepare it again
            spec = run.spec
            options = LocateOptions.model_validate(spec.options)
            request = DocumentRequest(Task(spec.task), spec.data, options, field=spec.field)
            document = await self.orchestrator.prepare(request)
        if len(document.pages) != run.record.pages_total:
            raise OCRError(f"the document now has {len(document.pages)} pages, not {run.record.pages_total}")

        async def store(index: int, outcome: PageOutcome) -> None:
            await run.save_page(index, page_to_json(outcome))

        response = await self.orchestrator.run_prepared(
            document, patient=True, done={i: page_from_json(p) for i, p in run.done.items()},
            on_page_start=run.page_started, on_page=store, stopping=run.stopping,
        )
        return response.model_dump()

    def _job_finished(self, record: JobRecord) -> None:
        if record.callback_url and record.state in (JobState.COMPLETED, JobState.FAILED):
            event = "job.completed" if record.state is JobState.COMPLETED else "job.failed"
            self.webhooks.send_later(record.callback_url, event, {"job": responses.job_status(record).model_dump()})

    # -- health --------------------------------------------------------------------------------

    async def health(self) -> Any:
        try:
            facts = await self.engine_health()
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

    async def read(self, request: DocumentRequest) -> OCRResponse:
        """Run one document, counting its pages and tokens (callers count errors)."""
        started = time.perf_counter()
        response = await self.orchestrator.run(request)
        self.record(request, response, started)
        return response

    def record(self, request: DocumentRequest, response: OCRResponse, started: float) -> None:
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

