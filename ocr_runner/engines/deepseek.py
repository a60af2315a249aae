"""The DeepSeek engine (OCR-2 or v1): loads the model and answers the ``Engine`` interface.

The work is done beside it, one job to a module: input preparation (``deepseek_inputs``), the
static ``generate`` path (``static``), continuous batching (``deepseek_continuous`` over
``continuous``), sizing the decode batch to GPU memory (``capacity``). What they share lives
here: the effective mode and token limit of a page, and the result of a finished or failed one.
"""

from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import Future

from ..errors import ErrorCode, OCRError
from ..modes import ResolutionMode, snap_mode
from ..settings import Settings
from . import capacity as sizing
from .base import Engine, EngineBusy, EngineHealth, EnginePage, EngineResult, PageRepetition
from .capacity import BatchCapacity, WorstPage
from .deepseek_inputs import PageInputs, PreparationFailed
from .plan import EnginePlan, plan_engine
from .torch_env import cuda_available, gpu_name, resolve_device

log = logging.getLogger(__name__)


class DeepseekEngine(Engine):
    """DeepSeek-OCR-2 or v1 (backend picked from the checkpoint's config) from a hub id or a local folder."""

    name = "deepseek"

    def __init__(self, settings: Settings, plan: EnginePlan | None = None) -> None:
        import torch

        from .deepseek_backends import load_backend
        from .deepseek_continuous import ContinuousPages
        from .loops import LoopHandling
        from .repetition import WindowedNoRepeatNGram, exempt_ids

        self.settings = settings
        self.plan = plan or plan_engine(settings, gpu_present=True)
        self.model = settings.model_name
        self.device = resolve_device(settings.device)
        self.torch_dtype = _resolve_dtype(settings.dtype, self.device)
        if self.device.startswith("cuda") and not settings.cudnn_attention:
            # cuDNN's sdpa builds an execution plan for every new (batch, length) shape; a decode step
            # always has a new length, so plans cost more than they save (measured: bench/results).
            torch.backends.cuda.enable_cudnn_sdp(False)
        # OCR-2 or v1, chosen from the checkpoint's config.json: model, tokenizer, modes, input preparation.
        self.backend = load_backend(settings, self.torch_dtype, self.device)
        tokenizer = self.backend.tokenizer
        tokenizer.padding_side = "left"  # right padding gives wrong tokens when batched
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.attn_implementation, self.net = self.backend.attn_implementation, self.backend.net
        self.net.eval()
        self.model_lock = threading.Lock()  # the static path: one ``generate`` at a time
        self.tile_pixels = self.backend.tile_pixels
        self.supported_modes = self.backend.supported_modes
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id  # set to the EOS token above when the checkpoint has none
        self.inputs = PageInputs(
            self.backend, self.net, lambda: self.settings,
            device=self.device, dtype=self.torch_dtype, pad_id=self.pad_id,
        )
        self.repetition_guard = None
        if settings.no_repeat_ngram_size:
            self.repetition_guard = WindowedNoRepeatNGram(
                settings.no_repeat_ngram_size, max(settings.no_repeat_window, settings.no_repeat_ngram_size),
                exempt_ids(tokenizer),
            )
        # Looping pages: detected, read once more with a stricter guard, cut if they still loop.
        self.loops = LoopHandling(lambda: self.settings, exempt_ids(tokenizer))
        self._strip_ids = {i for i in (tokenizer.bos_token_id, self.eos_id, self.pad_id) if i is not None}
        self.capacity = BatchCapacity(settings.max_batch_size, "MAX_BATCH_SIZE")
        # Copying the whole cache at every step is a fifth of a CPU decode step (bench/results); untimed on CUDA.
        room = settings.kv_cache_room
        self.kv_cache_room = room if room is not None else (128 if self.device == "cpu" else 0)
        self._continuous = ContinuousPages(self) if self.plan.batching == "continuous" else None
        log.info(
            "DeepSeek engine ready: %s (%s) on %s (%s, attention %s)",
            self.model, self.backend.family, self.device, self.torch_dtype, self.attn_implementation,
        )

    # -- interface -----------------------------------------------------------------------------

    @property
    def continuous(self) -> bool:
        return self._continuous is not None

    @property
    def _batcher(self):
        return self._continuous.batcher if self._continuous is not None else None

    def submit(self, pages: list[EnginePage]) -> list[Future]:
        """Continuous batching: queue the pages and return at once, one future per page.

        Raises ``EngineBusy`` when the queue is full. Pages are prepared (decoded, resized, tiled,
        tokenized) on the preprocessing threads, so the model's thread only sees ready inputs.
        """
        assert self._continuous is not None, "submit() needs BATCHING=continuous"
        return self._continuous.submit(pages)

    def run_batch(self, pages: list[EnginePage]) -> list[EngineResult]:
        if self._continuous is not None:
            try:
                return [future.result() for future in self.submit(pages)]
            except EngineBusy as exc:
                return [self.failed(str(exc), ErrorCode.OVERLOADED) for _ in pages]
        return self.run_static(pages)

    def run_static(self, pages: list[EnginePage]) -> list[EngineResult]:
        """The pages as one static batch: grouped by mode, one ``generate`` per group, whatever BATCHING says."""
        from .static import run_static

        return run_static(self, pages)

    def health(self) -> EngineHealth:
        return EngineHealth(
            engine=self.name,
            model=self.model,
            model_loaded=True,
            device=self.device,
            cuda_available=cuda_available(),
            gpu_name=gpu_name(),
            dtype=str(self.torch_dtype).removeprefix("torch."),
            attn_implementation=self.attn_implementation,
            batching=self.plan.batching,
            max_batch_size=self.capacity.rows,
            batch_limit=self.capacity.reason,
            reason=self.plan.reason,
        )

    def warmup(self) -> None:
        """Generate once at a realistic size (global view + tiles, batch of two); fail start-up if it cannot."""
        import io

        from PIL import Image

        from ..tasks import PROMPTS, Task

        buffer = io.BytesIO()
        tile = self.tile_pixels
        Image.new("RGB", (2 * tile, tile + tile // 2), "white").save(buffer, format="PNG")
        page = EnginePage(image=buffer.getvalue(), task=Task.OCR, prompt=PROMPTS[Task.OCR], max_new_tokens=2)
        for result in self.run_batch([page, page]):
            if result.error is not None:
                raise RuntimeError(f"warm-up generation failed: {result.error}")
        if self._batcher is not None and self.device.startswith("cuda"):
            self.fit_batch_to_gpu_memory()

    # -- decode batch size from GPU memory (see ``capacity``) -----------------------------------

    def fit_batch(self, total_bytes: int, reserved_bytes: int, usable_bytes: int | None = None) -> BatchCapacity:
        """Lower the continuous batch's rows to what fits beside ``reserved_bytes`` on a card of
        ``total_bytes`` (of which this process reaches ``usable_bytes``)."""
        return self._use_capacity(sizing.fit_batch(self, total_bytes, reserved_bytes, usable_bytes))

    def fit_batch_to_gpu_memory(self) -> BatchCapacity:
        return self._use_capacity(sizing.fit_batch_to_gpu_memory(self))

    @functools.cached_property
    def worst_page(self) -> WorstPage:
        """The page and prompt with the most prompt tokens here (see ``capacity.worst_page``)."""
        from ..tasks import PROMPTS

        return sizing.worst_page(self.inputs.thread_backend().prepare_inputs, self.supported_modes,
                                   self.tile_pixels, PROMPTS.values())

    def _use_capacity(self, fitted: BatchCapacity) -> BatchCapacity:
        self.capacity = fitted
        if self._batcher is not None:
            self._batcher.max_rows = fitted.rows
        log.info("decode batch: at most %d pages (%s)", fitted.rows, fitted.reason)
        return fitted

    # -- what the static and continuous paths share --------------------------------------------

    def mode(self, page: EnginePage) -> ResolutionMode:
        return snap_mode(ResolutionMode(page.base_size, page.image_size, page.crop_mode), self.supported_modes)

    def token_limit(self, page: EnginePage) -> int:
        return min(page.max_new_tokens or self.settings.max_new_tokens, self.settings.max_new_tokens)

    def page_result(self, mode: ResolutionMode, tokens: list[int], batch_size: int,
                    inference_ms: float, repetition: PageRepetition | None = None) -> EngineResult:
        """A finished page: its generated tokens (end-of-sequence excluded) as text, and whether it looped."""
        text = self.backend.tokenizer.decode([t for t in tokens if t not in self._strip_ids], skip_special_tokens=False)
        return EngineResult(
            text=text,
            engine=self.name,
            model=self.model,
            effective_base_size=mode.base_size,
            effective_image_size=mode.image_size,
            effective_crop_mode=mode.crop_mode,
            output_tokens=len(tokens),
            batch_size=batch_size,
            inference_ms=inference_ms,
            repetition=repetition,
        )

    def input_error(self, exc: Exception) -> EngineResult:
        """An unreadable image is invalid input; one the model's processor rejects (e.g. a prompt with
        two image tokens) is unprocessable."""
        if isinstance(exc, OCRError):
            return self.failed(exc.message, exc.code)
        if isinstance(exc, PreparationFailed):
            return self.failed(f"input could not be prepared for the model: {exc}", ErrorCode.UNPROCESSABLE)
        return self.failed(f"image could not be read: {exc.__class__.__name__}", ErrorCode.INVALID_INPUT)


def _resolve_dtype(requested: str, device: str):
    import torch

    if requested == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, requested)
