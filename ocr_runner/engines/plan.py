"""Which engine runs, how it batches, and why: decided once, from settings and the host.

The BentoML services are declared when ``service.py`` is imported, in the API process as well
as the engine's, so the decision must be cheap and the same in both: it looks for an NVIDIA
device without importing torch. The engine process then builds what the plan says
(``factory.create_engine``); with ``ENGINE=auto`` a DeepSeek model that cannot load there
falls back to the CPU engine, and its health says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..settings import Settings
from .torch_env import nvidia_device_present

EngineName = Literal["deepseek", "rapidocr"]
Batching = Literal["continuous", "static", "none"]


@dataclass(frozen=True)
class EnginePlan:
    engine: EngineName
    batching: Batching  # continuous: the engine's own; static: BentoML's adaptive batches; none: a page at a time
    reason: str
    fallback: bool = False  # ENGINE=auto: a DeepSeek load failure serves the CPU engine instead of stopping

    def bentoml_batching(self, settings: Settings) -> dict[str, Any]:
        """Arguments of the engine's ``@bentoml.api``.

        Only static batching goes through BentoML's dispatcher. It keeps one batch in flight at a
        time, so it cannot feed a batch that is still decoding: continuous batching takes every call
        as it comes. RapidOCR reads one image at a time, so batches would only add waiting there.
        """
        if self.batching != "static":
            return {"batchable": False}
        return {"batchable": True, "max_batch_size": settings.max_batch_size, "max_latency_ms": settings.max_latency_ms}


def plan_engine(settings: Settings, *, gpu_present: bool | None = None) -> EnginePlan:
    """The plan for these settings on this host (``gpu_present`` overrides the device check in tests)."""
    if settings.engine == "rapidocr":
        return EnginePlan("rapidocr", "none", "ENGINE=rapidocr")
    gpu = nvidia_device_present() if gpu_present is None else gpu_present
    if settings.engine == "auto" and not gpu:
        return EnginePlan(
            "rapidocr", "none", "ENGINE=auto and no NVIDIA GPU: DeepSeek-OCR needs a GPU to be practical"
        )
    # Static batches of one are the seed's one page at a time (BentoML refuses a batchable size of 1).
    batching: Batching = "none" if settings.batching == "static" and settings.max_batch_size == 1 else settings.batching
    if settings.engine == "deepseek":
        return EnginePlan("deepseek", batching, "ENGINE=deepseek")
    return EnginePlan("deepseek", batching, "ENGINE=auto and an NVIDIA GPU is present", fallback=True)
