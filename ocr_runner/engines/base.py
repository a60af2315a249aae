"""The engine interface: a batch of pages in, one result per page out, in order."""

from __future__ import annotations

import abc
from collections.abc import Callable
from concurrent.futures import Future

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ErrorCode
from ..tasks import Task


class EnginePage(BaseModel):
    """One page (an image) to read. Sent across the service boundary, so images travel as bytes."""

    model_config = ConfigDict(extra="forbid")

    image: bytes
    task: Task
    prompt: str
    base_size: int = 1024
    image_size: int = 640
    crop_mode: bool = True
    max_new_tokens: int | None = Field(None, ge=1)
    locate_text: str | None = None
    # PDF pages with a text layer: its runs as (text, x1, y1, x2, y2) in pixels of ``image``. Engines that
    # can use them (the CPU engine) read these instead of recognising the pixels; others ignore them.
    text_layer: list[tuple[str, float, float, float, float]] | None = None


class PageRepetition(BaseModel):
    """A page that looped (see ``engines.loops``): what was seen and what was done about it."""

    detected: bool = True
    reason: str = Field("", description="Why the page counts as looping.")
    retried: bool = False
    how: str | None = Field(None, description="The retry's strategy.")
    recovered: bool = False  # the retry did not loop: its reading is the answer
    trimmed: bool = False  # the answer still looped: its repeated tail was cut to one copy
    trimmed_tokens: int = 0


class EngineResult(BaseModel):
    """The raw output for one page, or the reason it failed (that page alone)."""

    text: str = ""
    error: str | None = None
    error_code: ErrorCode | None = None  # set with ``error``; the HTTP edge maps it to a status
    engine: str
    model: str
    effective_base_size: int | None = None
    effective_image_size: int | None = None
    effective_crop_mode: bool | None = None
    output_tokens: int | None = None
    batch_size: int = 1
    inference_ms: float = 0.0
    note: str | None = None
    repetition: PageRepetition | None = None  # set only for a page that looped
    # Which path read the page: "text_layer" (the PDF's own text), "ocr" (the engine's recogniser) or
    # "tesseract:<model>" (a script the CPU engine's recogniser has no model for). None: not said.
    source: str | None = None


class EngineHealth(BaseModel):
    """What an engine says of itself (``/health`` adds whether it answered)."""

    engine: str = Field(description="deepseek or rapidocr.")
    model: str
    model_loaded: bool
    device: str
    cuda_available: bool
    gpu_name: str | None = None
    dtype: str | None = None
    attn_implementation: str | None = None
    batching: str | None = Field(None, description="continuous, static (BentoML's batches) or none (one page at a time).")
    max_batch_size: int | None = Field(None, description="Pages decoded together at most.")
    batch_limit: str | None = Field(
        None, description="What sets max_batch_size: MAX_BATCH_SIZE, or on CUDA the rows that fit in GPU memory."
    )
    reason: str = Field("", description="Why this engine runs (the engine plan, or why it fell back).")
    degraded: bool = Field(
        False, description="True when this is not the engine the plan chose: ENGINE=auto on a GPU host whose DeepSeek "
                           "model failed to load serves the CPU engine (reason says why)."
    )


class EngineBusy(Exception):
    """More pages are waiting for the engine than it accepts; the caller should come back later."""


class Engine(abc.ABC):
    """Batch-first OCR engine. Knows nothing about HTTP."""

    name: str
    model: str
    # True when ``submit`` is available: pages join a running batch between decode steps.
    continuous: bool = False
    # True when this engine stands in for the one the plan chose (see ``factory.create_engine``).
    degraded: bool = False
    # Called after every decode step with (rows decoded, pages waiting), for metrics.
    on_decode_step: Callable[[int, int], None] | None = None

    @abc.abstractmethod
    def run_batch(self, pages: list[EnginePage]) -> list[EngineResult]:
        """Run every page; a page's failure is reported in its own result, never raised."""

    @abc.abstractmethod
    def health(self) -> EngineHealth: ...

    def submit(self, pages: list[EnginePage]) -> list[Future]:
        """Queue pages and return at once, one future per page (continuous engines only).

        Raises ``EngineBusy`` when the queue is full.
        """
        raise NotImplementedError(f"{self.name} does not batch continuously")

    def warmup(self) -> None:
        """Optional: run once before serving so the first request is not the slow one."""

    def failed(self, message: str, code: ErrorCode = ErrorCode.ENGINE_FAILURE) -> EngineResult:
        return EngineResult(engine=self.name, model=self.model, error=message, error_code=code)
