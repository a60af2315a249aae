"""A page's outcome as a job stores it (JSON), and back."""

from __future__ import annotations

from typing import Any

from ..engines.base import EngineResult
from ..errors import error_for
from ..pipeline import PageOutcome


def page_to_json(outcome: PageOutcome) -> dict[str, Any]:
    error = outcome.error
    return {
        "result": outcome.result.model_dump(mode="json") if outcome.result is not None else None,
        "error": {"code": error.code.value, "message": error.message, "field": error.field} if error else None,
        "engine_ms": outcome.engine_ms,
        "cache_hit": outcome.cache_hit,
    }


def page_from_json(data: dict[str, Any]) -> PageOutcome:
    error = data.get("error")
    return PageOutcome(
        result=EngineResult.model_validate(data["result"]) if data.get("result") is not None else None,
        error=error_for(error["code"], error["message"], field=error.get("field")) if error else None,
        engine_ms=float(data.get("engine_ms", 0.0)),
        cache_hit=bool(data.get("cache_hit", False)),
    )
