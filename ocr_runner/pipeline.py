"""Request preparation and response building around one engine call (no HTTP here).

``prepare`` validates and decodes everything a client sent, so a bad request fails
alone before it reaches a batch; ``build_response`` post-processes one engine result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .engines.base import EngineJob, EngineResult
from .errors import EngineItemFailed, InvalidInput, OCRError, UnprocessableRequest
from .grounding import extract_boxes, strip_grounding
from .images import load_image
from .modes import ResolutionMode, validate_mode
from .schemas import BoxOut, Metadata, OCRResponse, ResolutionModeOut, Timings
from .settings import Settings
from .tasks import Task, build_prompt


@dataclass(frozen=True)
class PreparedRequest:
    job: EngineJob
    requested: ResolutionMode
    width: int
    height: int
    decode_ms: float
    started: float


def prepare(
    settings: Settings,
    *,
    task: Task,
    image: bytes,
    prompt: str | None = None,
    base_size: int | None = None,
    image_size: int | None = None,
    crop_mode: bool | None = None,
    text_to_locate: str | None = None,
    max_new_tokens: int | None = None,
    field: str = "image_base64",
) -> PreparedRequest:
    started = time.perf_counter()
    if prompt is not None and len(prompt) > settings.max_prompt_chars:
        raise UnprocessableRequest(f"prompt is longer than {settings.max_prompt_chars} characters", field="prompt")
    if max_new_tokens is not None and not 1 <= max_new_tokens <= settings.max_new_tokens:
        raise UnprocessableRequest(
            f"max_new_tokens must be between 1 and {settings.max_new_tokens}", field="max_new_tokens"
        )
    requested = validate_mode(
        settings.base_size if base_size is None else base_size,
        settings.image_size if image_size is None else image_size,
        settings.crop_mode if crop_mode is None else crop_mode,
    )
    full_prompt = build_prompt(task, prompt, text_to_locate)
    decoded = load_image(image, max_pixels=settings.max_image_pixels, field=field)
    job = EngineJob(
        image=image,
        task=task,
        prompt=full_prompt,
        base_size=requested.base_size,
        image_size=requested.image_size,
        crop_mode=requested.crop_mode,
        max_new_tokens=max_new_tokens,
        locate_text=(text_to_locate or "").strip() or None,
    )
    return PreparedRequest(
        job=job,
        requested=requested,
        width=decoded.width,
        height=decoded.height,
        decode_ms=(time.perf_counter() - started) * 1000,
        started=started,
    )


def build_response(prepared: PreparedRequest, result: EngineResult, engine_ms: float) -> OCRResponse:
    """Turn one engine result into the seed-shaped response, boxes converted to pixels."""
    if result.error is not None:
        if result.error_status and 400 <= result.error_status < 500:
            raise InvalidInput(result.error, field="image")
        raise EngineItemFailed(f"the engine failed on this image: {result.error}")
    task = prepared.job.task
    boxes = extract_boxes(result.text, prepared.width, prepared.height)
    text = result.text if task is Task.LOCATE else strip_grounding(result.text)
    effective = None
    if result.effective_base_size is not None:
        effective = ResolutionModeOut(
            base_size=result.effective_base_size,
            image_size=result.effective_image_size or result.effective_base_size,
            crop_mode=bool(result.effective_crop_mode),
        )
    metadata = Metadata(
        prompt=prepared.job.prompt,
        task=task.value,
        engine=result.engine,
        model=result.model,
        requested_mode=ResolutionModeOut(**vars(prepared.requested)),
        effective_mode=effective,
        image_width=prepared.width,
        image_height=prepared.height,
        output_tokens=result.output_tokens,
        batch_size=result.batch_size,
        timings=Timings(
            decode_ms=round(prepared.decode_ms, 2),
            engine_ms=round(engine_ms, 2),
            inference_ms=round(result.inference_ms, 2),
            total_ms=round((time.perf_counter() - prepared.started) * 1000, 2),
        ),
        note=result.note,
    )
    return OCRResponse(
        success=True,
        result=text,
        raw_result=result.text,
        boxes=[BoxOut(**vars(b)) for b in boxes],
        metadata=metadata,
    )


def error_response(exc: OCRError) -> OCRResponse:
    return OCRResponse(success=False, error=exc.message, error_code=exc.code, field=exc.field)
