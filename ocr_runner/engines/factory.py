"""Pick the engine from settings and say why."""

from __future__ import annotations

import logging

from ..settings import Settings
from .base import Engine
from .torch_env import cuda_available

log = logging.getLogger(__name__)


def create_engine(settings: Settings) -> Engine:
    """ENGINE=deepseek|rapidocr is obeyed (a load failure stops start-up); auto prefers DeepSeek on CUDA."""
    if settings.engine == "rapidocr":
        return _rapid(settings, "ENGINE=rapidocr")
    if settings.engine == "deepseek":
        return _deepseek(settings, "ENGINE=deepseek")
    if not cuda_available():
        return _rapid(settings, "ENGINE=auto and no CUDA device: DeepSeek-OCR needs a GPU to be practical")
    try:
        return _deepseek(settings, "ENGINE=auto: CUDA available and the model loaded")
    except Exception as exc:  # noqa: BLE001 - auto mode falls back and reports why
        log.exception("DeepSeek engine failed to load; falling back to the CPU engine")
        return _rapid(settings, f"ENGINE=auto: {settings.model_name} failed to load ({exc.__class__.__name__}: {exc})")


def _deepseek(settings: Settings, reason: str) -> Engine:
    from .deepseek import DeepseekEngine

    log.info("engine: deepseek (%s)", reason)
    return DeepseekEngine(settings, reason=reason)


def _rapid(settings: Settings, reason: str) -> Engine:
    from .rapid import RapidOcrEngine

    log.info("engine: rapidocr (%s)", reason)
    return RapidOcrEngine(settings, reason=reason)
