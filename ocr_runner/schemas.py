"""Pydantic models at the HTTP edge. Field names keep the FastAPI seed's shape."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BoxOut(BaseModel):
    """A grounding box in pixels of the original image (after EXIF rotation)."""

    label: str = Field(description="What the box marks: the located text, or a layout class.")
    x1: int
    y1: int
    x2: int
    y2: int


class ResolutionModeOut(BaseModel):
    base_size: int
    image_size: int
    crop_mode: bool


class Timings(BaseModel):
    decode_ms: float = Field(description="Base64 and image decoding and validation in the API process.")
    engine_ms: float = Field(description="Round trip to the engine: queueing, batching and inference.")
    inference_ms: float = Field(description="The engine's batched inference call.")
    total_ms: float


class Metadata(BaseModel):
    prompt: str
    task: str
    engine: str
    model: str
    requested_mode: ResolutionModeOut
    effective_mode: ResolutionModeOut | None = Field(
        None, description="The mode the model actually ran; null for engines that read at native resolution."
    )
    image_width: int
    image_height: int
    output_tokens: int | None = None
    batch_size: int = Field(1, description="Size of the engine batch this request ran in.")
    timings: Timings
    note: str | None = None


class OCRResponse(BaseModel):
    """Seed-compatible response: ``success``, ``result``, ``metadata``; richer fields are additions."""

    success: bool
    result: str | None = Field(None, description="Text, markdown or the locate answer; grounding tags removed.")
    raw_result: str | None = Field(None, description="The engine's output before post-processing.")
    boxes: list[BoxOut] = Field(default_factory=list, description="Grounding boxes in pixels.")
    metadata: Metadata | None = None
    error: str | None = Field(None, description="What was wrong, when success is false.")
    error_code: str | None = None
    field: str | None = Field(None, description="The request field at fault, when there is one.")


class HealthResponse(BaseModel):
    status: str
    model_loaded: bool
    cuda_available: bool
    gpu_name: str | None
    engine: str
    model: str
    device: str
    dtype: str | None = None
    attn_implementation: str | None = None
    reason: str = Field(description="Why this engine was chosen.")
