"""OCR engines behind one batch-first interface; ``create_engine`` picks one from settings."""

from .base import Engine, EngineBusy, EngineHealth, EnginePage, EngineResult
from .factory import create_engine

__all__ = ["Engine", "EngineBusy", "EngineHealth", "EnginePage", "EngineResult", "create_engine"]
