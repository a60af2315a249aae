"""Pydantic models at the HTTP edge. Field names keep the FastAPI seed's shape; new ones are additions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from .engines.base import EngineHealth


class ResponseModel(BaseModel):
    """Response models leave unset optional fields out of the JSON.

    BentoML's OpenAPI generator drops ``null`` from optional types (``str | None`` is
    documented as ``string``), so a ``null`` would contradict the published schema.
    """

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class BoxOut(ResponseModel):
    """A grounding box in pixels of the page image (after EXIF rotation; rendered size for PDFs)."""

    label: str = Field(description="What the box marks: the located text, or a layout class.")
    x1: int
    y1: int
    x2: int
    y2: int
    page: int = Field(1, description="1-based page number the box is on.")


class ResolutionModeOut(ResponseModel):
    base_size: int
    image_size: int
    crop_mode: bool


class Timings(ResponseModel):
    decode_ms: float = Field(description="Decoding and validation (and PDF rendering) in the API process.")
    engine_ms: float = Field(description="Wall time waiting for the engine: queueing, batching and inference.")
    inference_ms: float = Field(description="The engine's batched inference calls, summed over pages.")
    total_ms: float


class PageTimings(ResponseModel):
    engine_ms: float
    inference_ms: float


class RepetitionOut(ResponseModel):
    """A page that looped (DeepSeek-OCR's repetition loops): what was seen and what was done about it."""

    detected: bool = True
    reason: str = Field(description="Why the page counts as looping.")
    retried: bool = Field(description="Read once more with another strategy (see how).")
    how: str | None = Field(None, description="The retry's strategy.")
    recovered: bool = Field(False, description="The retry did not loop: its reading is the answer.")
    trimmed: bool = Field(False, description="The answer still looped: its repeated tail was cut to one copy.")
    trimmed_tokens: int = Field(0, description="Tokens cut off.")


class RepetitionSummary(ResponseModel):
    """The pages of this request that looped (absent when none did)."""

    detected: bool = True
    retried: bool = Field(description="Every looping page was read once more.")
    how: str | None = None
    trimmed: bool = Field(description="At least one page still looped and had its repeated tail cut.")
    reason: str = Field(description="Why the first looping page counts as looping.")
    pages: list[int] = Field(description="Pages that looped.")
    retried_pages: list[int] = Field(default_factory=list)
    trimmed_pages: list[int] = Field(default_factory=list)


class PageResult(ResponseModel):
    """One page of a PDF; a failed page is reported in place."""

    page: int
    success: bool
    result: str | None = None
    raw_result: str | None = None
    boxes: list[BoxOut] = Field(default_factory=list)
    image_width: int
    image_height: int
    output_tokens: int | None = None
    batch_size: int | None = None
    effective_mode: ResolutionModeOut | None = None
    cache_hit: bool = False
    timings: PageTimings | None = None
    note: str | None = None
    repetition: RepetitionOut | None = Field(None, description="Set when the page looped.")
    source: str | None = Field(
        None, description="Which path read the page (CPU engine): text_layer, ocr, or tesseract:<model> for a "
        "script its recogniser has no model for.")
    error: str | None = None
    error_code: str | None = None


class FigureOut(ResponseModel):
    """A figure cropped from a page; ``name`` is how the markdown result links to it."""

    name: str
    page: int
    label: str
    x1: int
    y1: int
    x2: int
    y2: int
    image_base64: str = Field(description="PNG, base64.")


class AnnotatedPage(ResponseModel):
    page: int
    image_base64: str = Field(description="The page with its grounding boxes drawn, PNG, base64.")


class Metadata(ResponseModel):
    prompt: str
    task: str
    engine: str
    model: str
    requested_mode: ResolutionModeOut
    effective_mode: ResolutionModeOut | None = Field(
        None, description="The mode the model actually ran; null for engines that read at native resolution."
    )
    image_width: int = Field(description="The image's width; for a PDF, the first selected page's rendered width.")
    image_height: int
    output_tokens: int | None = Field(None, description="Generated tokens, summed over pages.")
    batch_size: int = Field(1, description="Largest engine batch any page of this request ran in.")
    timings: Timings
    note: str | None = None
    document_type: str = Field("image", description="image or pdf")
    page_count: int = Field(1, description="Pages in the file.")
    pages_selected: list[int] = Field(default_factory=lambda: [1])
    failed_pages: list[int] = Field(default_factory=list)
    cache_hit: bool = Field(False, description="Every page was answered from the result cache.")
    repetition: RepetitionSummary | None = Field(None, description="Set when a page looped (see pages[].repetition).")


class OCRResponse(ResponseModel):
    """Seed-compatible response: ``success``, ``result``, ``metadata``; richer fields are additions."""

    success: bool
    result: str | None = Field(
        None, description="Text, markdown or the locate answer; for a PDF the pages joined by a page-split line."
    )
    raw_result: str | None = Field(None, description="The engine's output before post-processing.")
    boxes: list[BoxOut] = Field(default_factory=list, description="Grounding boxes in pixels, with page numbers.")
    pages: list[PageResult] = Field(
        default_factory=list, description="Per-page results for PDFs; empty for a single image."
    )
    images: list[FigureOut] = Field(default_factory=list, description="Figure crops, when include_images is set.")
    annotated_images: list[AnnotatedPage] = Field(
        default_factory=list, description="Pages with their boxes drawn, when annotate is set."
    )
    metadata: Metadata | None = None
    error: str | None = Field(None, description="What was wrong, when success is false.")
    error_code: str | None = None
    field: str | None = Field(None, description="The request field at fault, when there is one.")


class ErrorResponse(ResponseModel):
    """Every error answer: what was wrong, its code, and the request field at fault when there is one."""

    success: bool = False
    error: str
    error_code: str = Field(description="invalid_input, invalid_request, unprocessable, payload_too_large, "
                            "overloaded, job_not_found, ... (the status follows from it)")
    field: str | None = None
    detail: str | None = Field(None, description="Request validation: every problem found, joined.")


class HealthResponse(EngineHealth):
    """``GET /health``: the engine's own facts, and whether it answers."""

    status: str = Field(
        description="ok; degraded when the engine is a fallback (ENGINE=auto, the GPU model failed to load: "
                    "reason says why); unavailable when the engine does not answer."
    )


class BatchItemResult(OCRResponse):
    status: int = Field(description="The HTTP status this item would have had on its own.")


class BatchResponse(ResponseModel):
    success: bool = Field(description="True when every item succeeded.")
    results: list[BatchItemResult]
    error: str | None = Field(None, description="Why the whole batch was refused (then results is empty).")
    error_code: str | None = None
    field: str | None = None


class JobProgress(ResponseModel):
    pages_done: int
    pages_total: int


class JobStatus(ResponseModel):
    job_id: str
    status: str = Field(description="queued, running, completed, failed or cancelled")
    task: str
    progress: JobProgress
    created_at: str
    updated_at: str
    error: str | None = None
    error_code: str | None = None
    result_url: str
