"""Build the engine an ``EnginePlan`` names, falling back to the CPU engine where the plan allows."""

from __future__ import annotations

import logging

from ..settings import Settings
from .base import Engine
from .plan import EnginePlan, plan_engine
from .torch_env import cuda_available

log = logging.getLogger(__name__)


def create_engine(settings: Settings, plan: EnginePlan | None = None) -> Engine:
    """ENGINE=deepseek|rapidocr is obeyed (a load failure stops start-up); with ENGINE=auto a GPU host
    that cannot load DeepSeek serves the CPU engine, says why, and reports itself degraded."""
    plan = plan or plan_engine(settings)
    if plan.engine == "rapidocr":
        return _rapid(settings, plan.reason)
    if plan.fallback and not cuda_available():
        return _rapid(settings, f"{plan.reason}, but torch sees no CUDA device (a CPU build of torch?)")
    try:
        return _deepseek(settings, plan)
    except Exception as exc:
        if not plan.fallback:
            raise
        log.exception("DeepSeek engine failed to load; falling back to the CPU engine (health: degraded)")
        return _rapid(settings, f"{plan.reason}, but {settings.model_name} failed to load "
                                f"({exc.__class__.__name__}: {exc})", degraded=True)


def _deepseek(settings: Settings, plan: EnginePlan) -> Engine:
    from .deepseek import DeepseekEngine

    log.info("engine: deepseek (%s)", plan.reason)
    return DeepseekEngine(settings, plan)


def _rapid(settings: Settings, reason: str, degraded: bool = False) -> Engine:
    from .rapid import RapidOcrEngine

    log.info("engine: rapidocr (%s)", reason)
    engine = RapidOcrEngine(settings, reason=reason)
    engine.degraded = degraded  # /health says "degraded": the GPU host serves the CPU engine, never silently
    return engine
