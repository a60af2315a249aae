"""BentoML composition root: settings -> engine service (batched) -> API service (typed endpoints).

Two services because BentoML only batches calls that arrive through its dispatcher:
the API service validates and decodes each request, then calls the engine's
batchable ``infer`` with one job; concurrent calls are merged into batches there.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

import bentoml
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse
from pydantic import Field

from ocr_runner.engines import EngineHealth, EngineJob, EngineResult, create_engine
from ocr_runner.errors import OCRError
from ocr_runner.images import decode_base64
from ocr_runner.http.engine_client import call_with_reconnect
from ocr_runner.http.errors import engine_call_error, json_error, respond_error
from ocr_runner.http.middleware import BodySizeLimit
from ocr_runner.pipeline import PreparedRequest, build_response, prepare
from ocr_runner.schemas import HealthResponse, OCRResponse
from ocr_runner.settings import load_settings
from ocr_runner.tasks import Task, parse_task

log = logging.getLogger("ocr_runner.service")
settings = load_settings()

# Connection recycling in BentoML 1.4's inter-service client drops in-flight answers under
# load (see README, "Reliability"); effectively disable it on the engine.
NO_RECYCLING = {"max_requests": 1_000_000_000, "max_age": 1e9}
EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"

ImageB64 = Annotated[str, Field(description="The image, base64 (a data: URL prefix is accepted).", examples=[EXAMPLE_PNG])]
Prompt = Annotated[str | None, Field(description="Replace the task's official prompt; <image> is added if missing.")]
BaseSize = Annotated[int, Field(description="Global view size: 512, 640, 768, 1024 or 1280.", examples=[1024])]
ImageSize = Annotated[int, Field(description="Tile size: 512, 640, 768, 1024 or 1280.", examples=[640])]
CropMode = Annotated[bool, Field(description="Tile large images (DeepSeek 'Gundam' mode).")]
MaxTokens = Annotated[int | None, Field(description="Cap on generated tokens for this request.")]


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
        self.engine = create_engine(settings)
        self.engine.warmup()

    @bentoml.api(batchable=True, max_batch_size=settings.max_batch_size, max_latency_ms=settings.max_latency_ms)
    def infer(self, jobs: list[EngineJob]) -> list[EngineResult]:
        return self.engine.run_batch(jobs)

    @bentoml.api
    def health(self) -> EngineHealth:
        return self.engine.health()


health_app = FastAPI()


@bentoml.service(name="deepseek-ocr", traffic={"timeout": settings.request_timeout_s + 30}, http={"host": settings.host, "port": settings.port})
@bentoml.asgi_app(health_app, path="/")
class DeepSeekOCR:
    """DeepSeek-OCR over HTTP: one endpoint per task, requests batched on the engine."""

    engine = bentoml.depends(OCREngine)

    @health_app.get("/health", response_model=HealthResponse)
    async def health(self) -> JSONResponse:
        try:
            facts = await self.engine.to_async.health()
        except Exception as exc:  # noqa: BLE001 - health must answer, not raise
            log.warning("engine health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "error": "the OCR engine is not reachable"}, status_code=503)
        return JSONResponse(HealthResponse(status="ok", **facts.model_dump()).model_dump())

    @bentoml.api(route="/ocr")
    async def ocr(
        self, ctx: bentoml.Context, image_base64: ImageB64, prompt: Prompt = None,
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None,
    ) -> OCRResponse:
        """Free OCR: the text of the image in reading order."""
        return await self._answer(ctx, Task.OCR, image_base64, prompt=prompt, base_size=base_size,
                                  image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens)

    @bentoml.api(route="/document-to-markdown")
    async def document_to_markdown(
        self, ctx: bentoml.Context, image_base64: ImageB64, prompt: Prompt = None,
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None,
    ) -> OCRResponse:
        """Convert a document page to markdown; layout boxes come back in pixels."""
        return await self._answer(ctx, Task.MARKDOWN, image_base64, prompt=prompt, base_size=base_size,
                                  image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens)

    @bentoml.api(route="/parse-figure")
    async def parse_figure(
        self, ctx: bentoml.Context, image_base64: ImageB64, prompt: Prompt = None,
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None,
    ) -> OCRResponse:
        """Parse a chart or figure."""
        return await self._answer(ctx, Task.FIGURE, image_base64, prompt=prompt, base_size=base_size,
                                  image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens)

    @bentoml.api(route="/locate-text")
    async def locate_text(
        self, ctx: bentoml.Context, image_base64: ImageB64,
        text_to_locate: Annotated[str, Field(description="The text to find.", examples=["Total"])] = "",
        base_size: BaseSize = settings.base_size, image_size: ImageSize = settings.image_size,
        crop_mode: CropMode = settings.crop_mode, max_new_tokens: MaxTokens = None,
    ) -> OCRResponse:
        """Find where a text appears; boxes come back in pixels of the original image."""
        return await self._answer(ctx, Task.LOCATE, image_base64, text_to_locate=text_to_locate,
                                  base_size=base_size, image_size=image_size, crop_mode=crop_mode,
                                  max_new_tokens=max_new_tokens)

    @health_app.post("/upload-ocr", response_model=OCRResponse, summary="OCR an uploaded file (multipart)")
    async def upload_ocr(
        self,
        file: Annotated[UploadFile, File(description="The image file (PNG, JPEG, TIFF, WebP, BMP, GIF).")],
        task: Annotated[str, Form(description="ocr, markdown, figure, locate or describe.")] = "ocr",
        prompt: Annotated[str | None, Form()] = None,
        text_to_locate: Annotated[str | None, Form()] = None,
        base_size: Annotated[int, Form()] = settings.base_size,
        image_size: Annotated[int, Form()] = settings.image_size,
        crop_mode: Annotated[bool, Form()] = settings.crop_mode,
        max_new_tokens: Annotated[int | None, Form()] = None,
    ) -> JSONResponse:
        """Multipart upload: ``file`` plus the task and options as form fields.

        Served by FastAPI rather than ``@bentoml.api`` so that a form value is never fetched
        as a URL and malformed forms get a 4xx.
        """
        try:
            response = await self._process(
                parse_task(task), await file.read(), field="file", prompt=prompt, text_to_locate=text_to_locate,
                base_size=base_size, image_size=image_size, crop_mode=crop_mode, max_new_tokens=max_new_tokens,
            )
            return JSONResponse(response.model_dump())
        except OCRError as exc:
            return json_error(exc)

    async def _answer(self, ctx: bentoml.Context, task: Task, image_base64: str, **options) -> OCRResponse:
        try:
            return await self._process(task, decode_base64(image_base64), **options)
        except OCRError as exc:
            return respond_error(ctx, exc)

    async def _process(self, task: Task, data: bytes, **options) -> OCRResponse:
        prepared: PreparedRequest = prepare(settings, task=task, image=data, **options)
        started = time.perf_counter()
        try:
            [result] = await call_with_reconnect(lambda: self.engine.to_async.infer([prepared.job]))
        except Exception as exc:  # noqa: BLE001 - classified into 503/504/500
            raise engine_call_error(exc) from exc
        return build_response(prepared, result, (time.perf_counter() - started) * 1000)


DeepSeekOCR.add_asgi_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
