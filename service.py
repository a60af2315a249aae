"""BentoML composition root: settings -> engine plan -> engine service (batched) -> API service (routes).

Two services because BentoML only batches calls that arrive through its dispatcher: the API
service validates and decodes each request (PDFs become pages), then calls the engine's
``infer`` once per page; the engine batches them (continuously, or through BentoML's adaptive
batches). Routes only delegate: what they do is ``ocr_runner.http.serving``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated

import bentoml
from pydantic import Field

from ocr_runner.admission import Admission
from ocr_runner.engines import EngineBusy, EngineHealth, EnginePage, EngineResult, create_engine
from ocr_runner.engines.plan import plan_engine
from ocr_runner.engines.torch_env import prefer_passive_openmp
from ocr_runner.http.auth import ApiKeyAuth, load_keys
from ocr_runner.http.lifecycle import die_with_parent, exit_deadline
from ocr_runner.http.logs import configure_logging
from ocr_runner.http.metrics import EngineMetrics, ErrorCounter
from ocr_runner.http.middleware import BodySizeLimit, MalformedMultipart, RequestId, ValidationErrorShape
from ocr_runner.http.routes import build_app
from ocr_runner.http.serving import OCRServing
from ocr_runner.memory import limit_malloc_arenas, start_periodic_trim
from ocr_runner.openai.routes import OpenAIErrorShape
from ocr_runner.openai.routes import router as openai_routes
from ocr_runner.options import DocumentBody, LocateBody, TaskDocument
from ocr_runner.schemas import BatchResponse, OCRResponse
from ocr_runner.settings import load_settings
from ocr_runner.tasks import Task

settings = load_settings()
plan = plan_engine(settings)
# Each worker imports this module before it starts its threads or loads torch: process-wide runtime
# choices go here (docs/operations.md, "Reliability"; docs/benchmarks.md).
limit_malloc_arenas(settings.malloc_arena_max)
prefer_passive_openmp()

# Connection recycling in BentoML 1.4's inter-service client drops in-flight answers under
# load (docs/operations.md, "Reliability"); effectively disable it on the engine.
NO_RECYCLING = {"max_requests": 1_000_000_000, "max_age": 1e9}
# A worker exits this long after SIGTERM whatever still runs: the jobs' grace, and time to hand them back.
STOP_MARGIN_S = 10.0


@bentoml.service(
    name="ocr-engine",
    resources={"gpu": 1},
    workers=1,
    traffic={"timeout": settings.request_timeout_s},
    runner_connection=NO_RECYCLING,
)
class EngineService:
    """Owns the model. One batchable method; everything else happens in the API service."""

    def __init__(self) -> None:
        die_with_parent()
        configure_logging(settings.log_format, settings.log_level)
        start_periodic_trim(settings.malloc_trim_interval_s)
        self.engine = create_engine(settings, plan)
        self.engine.on_decode_step = EngineMetrics().observe_step
        self.engine.warmup()
        # Engines without a queue bound of their own (the CPU engine): 503 past it, not minutes of waiting.
        self.admission = Admission(settings.max_waiting_pages or 8 * settings.max_batch_size)

    async def _bounded(self, pages: list[EnginePage]) -> list[EngineResult]:
        try:
            with self.admission.enter(len(pages)):
                return await asyncio.to_thread(self.engine.run_batch, pages)
        except EngineBusy as exc:
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc

    if plan.batching == "continuous":

        @bentoml.api
        async def infer(self, pages: list[EnginePage]) -> list[EngineResult]:
            if not self.engine.continuous:  # ENGINE=auto fell back to the CPU engine
                return await self._bounded(pages)
            try:
                futures = self.engine.submit(pages)
            except EngineBusy as exc:
                raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc
            try:
                return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))
            except asyncio.CancelledError:
                for future in futures:  # the caller left: free the pages' queue places and batch rows
                    future.cancel()
                raise

    elif plan.batching == "none":  # the CPU engine, or static batches of one: a page at a time

        @bentoml.api
        async def infer(self, pages: list[EnginePage]) -> list[EngineResult]:
            return await self._bounded(pages)

    else:  # static: BentoML's adaptive batches, bounded by its max_latency_ms

        @bentoml.api(**plan.bentoml_batching(settings))
        def infer(self, pages: list[EnginePage]) -> list[EngineResult]:
            return self.engine.run_batch(pages)

    @bentoml.on_startup
    def stop_on_time(self) -> None:
        exit_deadline(settings.shutdown_grace_s + STOP_MARGIN_S)

    @bentoml.api
    async def health(self) -> EngineHealth:
        # Async, so it answers while a synchronous ``infer`` holds BentoML's one worker thread.
        return self.engine.health()


http_app = build_app(openai_routes)
Items = Annotated[list[TaskDocument], Field(description="Documents to read, each with its own task.")]


@bentoml.service(
    name="deepseek-ocr",
    traffic={"timeout": settings.request_timeout_s + 30},
    http={"host": settings.host, "port": settings.port},
)
@bentoml.asgi_app(http_app, path="/")
class OCRService:
    """DeepSeek-OCR (or the embedded CPU engine) over HTTP: one endpoint per task, pages batched on the engine."""

    engine = bentoml.depends(EngineService)

    def __init__(self) -> None:
        die_with_parent()
        configure_logging(settings.log_format, settings.log_level)
        start_periodic_trim(settings.malloc_trim_interval_s)
        self.serving = OCRServing(
            settings, plan,
            infer=lambda pages: self.engine.to_async.infer(pages),
            engine_health=lambda: self.engine.to_async.health(),
        )
        http_app.state.serving = self.serving

    @bentoml.on_startup
    async def start_jobs(self) -> None:
        exit_deadline(settings.shutdown_grace_s + STOP_MARGIN_S)
        await self.serving.start()

    @bentoml.on_shutdown
    async def drain_jobs(self) -> None:
        await self.serving.close()

    # The request body of each route is one model of ``ocr_runner.options`` (``input_spec``), so
    # the seed's flat JSON and the keyword client (``client.ocr(image_base64=...)``) keep working
    # and an unknown field is refused.

    @bentoml.api(route="/ocr", input_spec=DocumentBody)
    async def ocr(self, ctx: bentoml.Context, **body) -> OCRResponse:
        """Free OCR: the text of the image (or of each PDF page) in reading order."""
        return await self.serving.document(ctx, Task.OCR, DocumentBody.model_construct(**body))

    @bentoml.api(route="/document-to-markdown", input_spec=DocumentBody)
    async def document_to_markdown(self, ctx: bentoml.Context, **body) -> OCRResponse:
        """Convert a document page (or a PDF) to markdown; layout boxes come back in pixels."""
        return await self.serving.document(ctx, Task.MARKDOWN, DocumentBody.model_construct(**body))

    @bentoml.api(route="/parse-figure", input_spec=DocumentBody)
    async def parse_figure(self, ctx: bentoml.Context, **body) -> OCRResponse:
        """Parse a chart or figure."""
        return await self.serving.document(ctx, Task.FIGURE, DocumentBody.model_construct(**body))

    @bentoml.api(route="/locate-text", input_spec=LocateBody)
    async def locate_text(self, ctx: bentoml.Context, **body) -> OCRResponse:
        """Find where a text appears; boxes come back in pixels, with page numbers for PDFs."""
        return await self.serving.document(ctx, Task.LOCATE, LocateBody.model_construct(**body))

    @bentoml.api(route="/batch")
    async def batch(self, ctx: bentoml.Context, items: Items) -> BatchResponse:
        """Many images or PDFs in one request: results in order, a failed item reported in place."""
        return await self.serving.batch(ctx, items)

    @bentoml.api(route="/stream", input_spec=TaskDocument)
    async def stream(self, ctx: bentoml.Context, **body) -> AsyncGenerator[str, None]:
        """JSON lines: one per page as it finishes (``"event": "page"``), then the whole response (``"done"``)."""
        async for line in self.serving.stream(ctx, TaskDocument.model_construct(**body)):
            yield line


# /docs.json is BentoML's generated document made the project's (ocr_runner/http/docs.py).
http_app.state.openapi_source = lambda: OCRService.openapi_spec.asdict()

# The first middleware added is the outermost: ids on every answer, every error counted (the
# auth and body-limit refusals too), keys before bodies are read.
OCRService.add_asgi_middleware(RequestId)
OCRService.add_asgi_middleware(ErrorCounter)
OCRService.add_asgi_middleware(OpenAIErrorShape)
_api_keys = load_keys(settings.api_keys, settings.api_keys_file)
if _api_keys or settings.rate_limit or settings.poll_rate_limit:
    OCRService.add_asgi_middleware(
        ApiKeyAuth, keys=_api_keys, public_paths=tuple(settings.public_paths), rate_limit=settings.rate_limit,
        poll_rate_limit=settings.poll_rate_limit, redis_url=settings.redis_url, redis_prefix=settings.redis_prefix,
    )
OCRService.add_asgi_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
OCRService.add_asgi_middleware(ValidationErrorShape)
OCRService.add_asgi_middleware(MalformedMultipart)
