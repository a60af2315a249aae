"""OCR engines behind one batch-first interface; ``create_engine`` picks one from settings."""

from .base import Engine, EngineBusy, EngineHealth, EngineJob, EngineResult
from .factory import create_engine

__all__ = ["Engine", "EngineHealth", "EngineJob", "EngineResult", "create_engine"]
