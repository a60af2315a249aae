"""BentoML composition root: settings -> engine service (batched) -> API service (typed endpoints).

Two services because BentoML only batches calls that arrive through its dispatcher:
the API service validates and decodes each request (PDFs become pages), then calls
the engine's batchable ``infer`` once per page; concurrent calls merge into batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import AsyncGenerator
from typing import Annotated

import bentoml
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field

from ocr_runner.cache import ResultCache
from ocr_runner.engines import EngineBusy, EngineHealth, EnginePage, EngineResult, create_engine
from ocr_runner.engines.torch_env import nvidia_device_present, prefer_passive_openmp
from ocr_runner.errors import ClientDisconnected, OCRError, UnprocessableRequest
from ocr_runner.http.engine_client import call_with_reconnect
from ocr_runner.http.errors import engine_call_error, json_error, respond_error
from ocr_runner.http.auth import ApiKeyAuth, load_keys
from ocr_runner.http.logs import configure_logging
from ocr_runner.http.metrics import EngineMetrics, ErrorCounter, ocr_metrics
from ocr_runner.http.middleware import BodySizeLimit, MalformedMultipart, RequestId, ValidationErrorShape
from ocr_runner.images import decode_base64
from ocr_runner.jobs import JobConflict, JobRecord, JobState, JobStore
from ocr_runner.memory import limit_malloc_arenas, start_periodic_trim
from ocr_runner.orchestrator import Orchestrator
from ocr_runner.pipeline import DocumentRequest
from ocr_runner.schemas import (
    BatchItemResult,
    BatchResponse,
    DocumentItem,
    HealthResponse,
    JobProgress,
    JobStatus,
    OCRResponse,
)
from ocr_runner.settings import Settings, load_settings
from ocr_runner.tasks import Task, parse_task

log = logging.getLogger("ocr_runner.service")
settings = load_settings()
# Each worker imports this module before it starts its threads or loads torch: process-wide runtime
# choices go here (README, "Reliability" and "Benchmarks").
limit_malloc_arenas(settings.malloc_arena_max)
prefer_passive_openmp()

# Connection recycling in BentoML 1.4's inter-service client drops in-flight answers under
# load (see README, "Reliability"); effectively disable it on the engine.
NO_RECYCLING = {"max_requests": 1_000_000_000, "max_age": 1e9}
# How often a running request checks that its client is still connected.
DISCONNECT_POLL_S = 0.5


def _cpu_engine(settings: Settings) -> bool:
    """RapidOCR for certain: asked for, or ENGINE=auto with no NVIDIA device to run DeepSeek on."""
    return settings.engine == "rapidocr" or (settings.engine == "auto" and not nvidia_device_present())


def _continuous(settings: Settings) -> bool:
    """The DeepSeek engine batches by itself between decode steps; BentoML passes single calls through."""
    return settings.batching == "continuous" and not _cpu_engine(settings)


def _batching(settings: Settings) -> dict:
    """BentoML's adaptive batching for the GPU engine with BATCHING=static; single calls otherwise.

    BentoML keeps one batch in flight at a time, so it cannot feed a batch that is still decoding:
    continuous batching takes every call as it comes. RapidOCR reads one image at a time, so batches
    only add waiting there (measured: bench/results/serve-vm-2core-rapidocr.json). MAX_BATCH_SIZE=1
    is the seed's one-at-a-time (BentoML refuses a batchable size of 1).
    """
    if _cpu_engine(settings) or settings.max_batch_size == 1:
        return {"batchable": False}
    return {"batchable": True, "max_batch_size": settings.max_batch_size, "max_latency_ms": settings.max_latency_ms}
UI_PAGE = (Path(__file__).resolve().parent / "ocr_runner" / "http" / "static" / "ui.html").read_text(encoding="utf-8")
EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"

ImageB64 = Annotated[
    str, Field(description="The image or PDF, base64 (a data: URL prefix is accepted).", examples=[EXAMPLE_PNG])
]
Prompt = Annotated[str | None, Field(description="Replace the task's official prompt; <image> is added if missing.")]
BaseSize = Annotated[int, Field(description="Global view size: 512, 640, 768, 1024 or 1280.", examples=[1024])]
ImageSize = Annotated[int, Field(description="Tile size: 512, 640, 768, 1024 or 1280.", examples=[640])]
CropMode = Annotated[bool, Field(description="Tile large images (DeepSeek 'Gundam' mode).")]
MaxTokens = Annotated[int | None, Field(description="Cap on generated tokens for this request.")]
Pages = Annotated[str | None, Field(description="PDF page range, e.g. '1-3,5,8-' (all pages when omitted).")]
IncludeImages = Annotated[bool, Field(description="Return figure crops, linked from the markdown as images/….png.")]
Annotate = Annotated[bool, Field(description="Return each page with its grounding boxes drawn (PNG).")]
ForceOcr = Annotated[bool, Field(description="PDFs: recognise every page even where it carries a text layer "
                                             "(the CPU engine otherwise reads that text directly).")]


@bentoml.service(
    name="ocr-engine",
    resources={"gpu": 1},
    workers=1,
    traffic={"timeout": settings.request_timeout_s},
    runner_connection=NO_RECYCLING,
)
class OCREngine:
    """Owns the model. One batchable method; everything else happens in the API service."""

    def __init__(self) -> None:
        configure_logging(settings.log_format, settings.log_level)
        start_periodic_trim(settings.malloc_trim_interval_s)
        self.engine = create_engine(settings)
        self.engine.on_decode_step = EngineMetrics().observe_step
        self.engine.warmup()

    if _continuous(settings):

        @bentoml.api
        async def infer(self, jobs: list[EnginePage]) -> list[EngineResult]:
            if not self.engine.continuous:  # ENGINE=auto fell back to the CPU engine
                return await asyncio.to_thread(self.engine.run_batch, jobs)
            try:
                futures = self.engine.submit(jobs)
            except EngineBusy as exc:
                raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc
            try:
                return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))
            except asyncio.CancelledError:
                for future in futures:  # the caller left: free the pages' queue places and batch rows
                    future.cancel()
                raise

    else:

        @bentoml.api(**_batching(settings))
        def infer(self, jobs: list[EnginePage]) -> list[EngineResult]:
            return self.engine.run_batch(jobs)

    @bentoml.api
    async def health(self) -> EngineHealth:
        # Async, so it answers while a synchronous ``infer`` holds BentoML's one worker thread.
        return self.engine.health()


http_app = FastAPI()


@bentoml.service(
    name="deepseek-ocr",
    traffic={"timeout": settings.request_timeout_s + 30},
    http={"host": settings.host, "port": settings.port},
)
@bentoml.asgi_app(http_app, path="/")
class DeepSeekOCR:
    """DeepSeek-OCR over HTTP: one endpoint per task, pages batched on the engine."""

    engine = bentoml.depends(OCREngine)

    def __init__(self) -> None:
        configure_logging(settings.log_format, settings.log_level)
        start_periodic_trim(settings.malloc_trim_interval_s)
        cache = ResultCache(settings.cache_max_bytes) if settings.cache_enabled else None
        self.orchestrator = Orchestrator(settings, self._infer, cache)
        self.metrics = ocr_metrics()
        self.jobs = JobStore(
            Path(settings.jobs_dir), ttl_s=settings.job_ttl_s, max_active=settings.max_active_jobs,
            on_failed=self.metrics.count_error,
        )

    async def _infer(self, job: EnginePage) -> EngineResult:
        self.metrics.engine_inflight.inc()
        try:
            [result] = await call_with_reconnect(lambda: self.engine.to_async.infer([job]))
        except Exception as exc:  # noqa: BLE001 - classified into 503/504/500
            raise engine_call_error(exc) from exc
        finally:
            self.metrics.engine_inflight.dec()
        return result

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

    @http_app.get("/health", response_model=HealthResponse)
    async def health(self) -> JSONResponse:
        try:
            facts = await self.engine.to_async.health()
        except Exception as exc:  # noqa: BLE001 - health must answer, not raise
            log.warning("engine health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "error": "the OCR engine is not reachable"}, status_code=503)
        return JSONResponse(HealthResponse(status="ok", **facts.model_dump()).model_dump())

    @http_app.get("/ui", response_class=HTMLResponse, summary="A small web page: drop a file, see the result")
    async def ui(self) -> HTMLResponse:
        return HTMLResponse(UI_PAGE)

    @bentoml.api(route="/ocr")
    async def ocr(
        self, ctx: bentoml.Context, image_base64: ImageB64, prompt: Prompt = None,
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None, pages: Pages = None,
        include_images: IncludeImages = False, annotate: Annotate = False, force_ocr: ForceOcr = False,
    ) -> OCRResponse:
        """Free OCR: the text of the image (or of each PDF page) in reading order."""
        return await self._answer(ctx, Task.OCR, image_base64, prompt=prompt, base_size=base_size,
                                  image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens,
                                  pages=pages, include_images=include_images, annotate=annotate, force_ocr=force_ocr)

    @bentoml.api(route="/document-to-markdown")
    async def document_to_markdown(
        self, ctx: bentoml.Context, image_base64: ImageB64, prompt: Prompt = None,
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None, pages: Pages = None,
        include_images: IncludeImages = False, annotate: Annotate = False, force_ocr: ForceOcr = False,
    ) -> OCRResponse:
        """Convert a document page (or a PDF) to markdown; layout boxes come back in pixels."""
        return await self._answer(ctx, Task.MARKDOWN, image_base64, prompt=prompt, base_size=base_size,
                                  image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens,
                                  pages=pages, include_images=include_images, annotate=annotate, force_ocr=force_ocr)

    @bentoml.api(route="/parse-figure")
    async def parse_figure(
        self, ctx: bentoml.Context, image_base64: ImageB64, prompt: Prompt = None,
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None, pages: Pages = None,
        include_images: IncludeImages = False, annotate: Annotate = False,
    ) -> OCRResponse:
        """Parse a chart or figure."""
        return await self._answer(ctx, Task.FIGURE, image_base64, prompt=prompt, base_size=base_size,
                                  image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens,
                                  pages=pages, include_images=include_images, annotate=annotate)

    @bentoml.api(route="/locate-text")
    async def locate_text(
        self, ctx: bentoml.Context, image_base64: ImageB64,
        text_to_locate: Annotated[str, Field(description="The text to find.", examples=["Total"])] = "",
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None, pages: Pages = None,
        include_images: IncludeImages = False, annotate: Annotate = False,
    ) -> OCRResponse:
        """Find where a text appears; boxes come back in pixels, with page numbers for PDFs."""
        return await self._answer(ctx, Task.LOCATE, image_base64, text_to_locate=text_to_locate,
                                  base_size=base_size, image_size=image_size, crop_mode=crop_mode,
                                  max_new_tokens=max_new_tokens, pages=pages, include_images=include_images,
                                  annotate=annotate)

    @bentoml.api(route="/batch")
    async def batch(
        self, ctx: bentoml.Context,
        items: Annotated[list[DocumentItem], Field(description="Documents to read, each with its own task.")],
    ) -> BatchResponse:
        """Many images or PDFs in one request: results in order, a failed item reported in place."""
        try:
            if not 1 <= len(items) <= settings.max_batch_items:
                raise UnprocessableRequest(f"items must hold 1 to {settings.max_batch_items} documents", field="items")
            answers = await until_disconnected(
                ctx, self.orchestrator.run_many([self._document_request(item) for item in items])
            )
        except OCRError as exc:
            respond_error(ctx, exc)
            return BatchResponse(success=False, results=[], error=exc.message, error_code=exc.code, field=exc.field)
        results = [BatchItemResult(**response.model_dump(), status=status) for response, status in answers]
        return BatchResponse(success=all(r.success for r in results), results=results)

    @bentoml.api(route="/stream")
    async def stream(
        self, ctx: bentoml.Context, image_base64: ImageB64,
        task: Annotated[str, Field(description="ocr, markdown, figure, locate or describe.")] = "ocr",
        prompt: Prompt = None, text_to_locate: str | None = None,
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None, pages: Pages = None,
        include_images: IncludeImages = False, annotate: Annotate = False, force_ocr: ForceOcr = False,
    ) -> AsyncGenerator[str, None]:
        """JSON lines: one per page as it finishes (``"event": "page"``), then the whole response (``"done"``)."""
        started = time.perf_counter()
        try:
            request = DocumentRequest(
                task=parse_task(task), data=decode_base64(image_base64), prompt=prompt, text_to_locate=text_to_locate,
                base_size=base_size, image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens,
                pages=pages, include_images=include_images, annotate=annotate, force_ocr=force_ocr,
            )
            document = await self.orchestrator.prepare(request)
        except OCRError as exc:
            # Before the first line: BentoML reads the first chunk before it sends the status, so
            # this answer carries the error's status (and ErrorCounter counts it).
            yield json.dumps({"event": "done", **respond_error(ctx, exc).model_dump()}) + "\n"
            return
        ctx.response.headers["Content-Type"] = "application/x-ndjson"
        async for item in self.orchestrator.stream(document):
            event = "done" if isinstance(item, OCRResponse) else "page"
            if event == "done":
                self._answered(request, item, started)
            yield json.dumps({"event": event, **item.model_dump()}) + "\n"

    @http_app.post("/upload-ocr", response_model=OCRResponse, summary="OCR an uploaded file (multipart)")
    async def upload_ocr(
        self,
        file: Annotated[UploadFile, File(description="An image (PNG, JPEG, TIFF, WebP, BMP, GIF) or a PDF.")],
        task: Annotated[str, Form(description="ocr, markdown, figure, locate or describe.")] = "ocr",
        prompt: Annotated[str | None, Form()] = None,
        text_to_locate: Annotated[str | None, Form()] = None,
        base_size: Annotated[int, Form()] = settings.base_size,
        image_size: Annotated[int, Form()] = settings.image_size,
        crop_mode: Annotated[bool, Form()] = settings.crop_mode,
        max_new_tokens: Annotated[int | None, Form()] = None,
        pages: Annotated[str | None, Form(description="PDF page range, e.g. '1-3,5'.")] = None,
        include_images: Annotated[bool, Form()] = False,
        annotate: Annotated[bool, Form()] = False,
        force_ocr: Annotated[bool, Form(description="PDFs: recognise pages even where they have a text layer.")] = False,
    ) -> JSONResponse:
        """Multipart upload: ``file`` plus the task and options as form fields.

        Served by FastAPI rather than ``@bentoml.api`` so that a form value is never fetched
        as a URL and malformed forms get a 4xx.
        """
        started = time.perf_counter()
        try:
            request = DocumentRequest(
                task=parse_task(task), data=await file.read(), field="file", prompt=prompt,
                text_to_locate=text_to_locate, base_size=base_size, image_size=image_size, crop_mode=crop_mode,
                max_new_tokens=max_new_tokens, pages=pages, include_images=include_images, annotate=annotate,
                force_ocr=force_ocr,
            )
            return JSONResponse((await self._observed(request)).model_dump())
        except OCRError as exc:
            return json_error(exc)

    @http_app.post("/jobs", status_code=202, response_model=JobStatus, summary="Submit a long document as a job")
    async def submit_job(self, item: DocumentItem) -> JSONResponse:
        """Validate the document now (4xx at once), then read it in the background; poll ``/jobs/{id}``."""
        try:
            request = self._document_request(item)
            if isinstance(request, OCRError):
                raise request
            self.jobs.ensure_capacity()  # before the (possibly long) rendering of every page
            document = await self.orchestrator.prepare(request)
            record = self.jobs.submit(
                request.task.value,
                len(document.pages),
                lambda progress: self.orchestrator.run_prepared(document, progress, patient=True),
            )
        except OCRError as exc:
            return json_error(exc)
        return JSONResponse(job_status(record).model_dump(), status_code=202)

    @http_app.get("/jobs/{job_id}", response_model=JobStatus, summary="A job's state and progress")
    async def job_status(self, job_id: str) -> JSONResponse:
        try:
            return JSONResponse(job_status(self.jobs.get(job_id)).model_dump())
        except OCRError as exc:
            return json_error(exc)

    @http_app.get("/jobs/{job_id}/result", response_model=OCRResponse, summary="A finished job's result")
    async def job_result(self, job_id: str) -> JSONResponse:
        """The OCR response once completed; 409 otherwise (a failed job's body says why and its status)."""
        try:
            record = self.jobs.get(job_id)
        except OCRError as exc:
            return json_error(exc)
        if record.state is JobState.COMPLETED and record.result is not None:
            return JSONResponse(record.result)
        if record.state is JobState.FAILED:
            # 409, not the job's own status: retrying this GET cannot change a failed job.
            body = {"success": False, "error": record.error, "error_code": record.error_code, "field": None,
                    "job_status": "failed", "original_status": record.error_status}
            return JSONResponse(body, status_code=409)
        return json_error(JobConflict(f"job is {record.state.value}", field="job_id"))

    @http_app.delete("/jobs/{job_id}", response_model=JobStatus, summary="Cancel a job")
    async def cancel_job(self, job_id: str) -> JSONResponse:
        try:
            return JSONResponse(job_status(self.jobs.cancel(job_id)).model_dump())
        except OCRError as exc:
            return json_error(exc)

    async def _answer(self, ctx: bentoml.Context, task: Task, image_base64: str, **options) -> OCRResponse:
        try:
            request = DocumentRequest(task=task, data=decode_base64(image_base64), **options)
            return await until_disconnected(ctx, self._observed(request))
        except OCRError as exc:
            return respond_error(ctx, exc)

    @staticmethod
    def _document_request(item: DocumentItem) -> DocumentRequest | OCRError:
        try:
            options = item.model_dump(exclude={"image_base64", "task"})
            return DocumentRequest(task=parse_task(item.task), data=decode_base64(item.image_base64), **options)
        except OCRError as exc:
            return exc


async def until_disconnected(ctx: bentoml.Context, work):
    """Run ``work``; if the client goes away first, cancel it so its unsent pages never reach the engine.

    Pages already at the engine finish there (a batch cannot drop one member), but a long PDF
    stops after them instead of occupying the GPU for nobody.
    """
    task = asyncio.ensure_future(work)
    request = getattr(ctx, "request", None)
    while request is not None:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if done:
            break
        if await request.is_disconnected():
            task.cancel()
            log.info("client disconnected; request cancelled")
            raise ClientDisconnected("the client closed the connection before the answer was ready")
    return await task


def job_status(record: JobRecord) -> JobStatus:
    def iso(timestamp: float) -> str:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()

    return JobStatus(
        job_id=record.job_id,
        status=record.state.value,
        task=record.task,
        progress=JobProgress(pages_done=record.pages_done, pages_total=record.pages_total),
        created_at=iso(record.created_at),
        updated_at=iso(record.updated_at),
        error=record.error,
        error_code=record.error_code,
        result_url=f"/jobs/{record.job_id}/result",
    )


# The first middleware added is the outermost: ids on every answer, every error counted (the
# auth and body-limit refusals too), keys before bodies are read.
DeepSeekOCR.add_asgi_middleware(RequestId)
DeepSeekOCR.add_asgi_middleware(ErrorCounter)
_api_keys = load_keys(settings.api_keys, settings.api_keys_file)
if _api_keys or settings.rate_limit:
    DeepSeekOCR.add_asgi_middleware(
        ApiKeyAuth, keys=_api_keys, public_paths=tuple(settings.public_paths), rate_limit=settings.rate_limit
    )
DeepSeekOCR.add_asgi_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
DeepSeekOCR.add_asgi_middleware(ValidationErrorShape)
DeepSeekOCR.add_asgi_middleware(MalformedMultipart)
