"""One place that turns exceptions into seed-shaped error responses."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import EngineTimeout, OCRError, Overloaded
from ..pipeline import error_response
from ..schemas import OCRResponse

log = logging.getLogger(__name__)


def engine_call_error(exc: Exception) -> OCRError:
    """Classify a failed call to the engine service (overload, timeout, or an outage)."""
    status = getattr(getattr(exc, "error_code", None), "value", None)
    if status in (429, 503):
        return Overloaded("the OCR engine is at capacity; retry shortly")
    if status == 504 or isinstance(exc, TimeoutError) or "timeout" in exc.__class__.__name__.lower():
        return EngineTimeout("the OCR engine did not answer in time")
    log.exception("engine call failed")
    return Overloaded("the OCR engine could not be reached; retry shortly")


def error_headers(exc: OCRError) -> dict[str, str]:
    """Headers an error answer carries: ``Retry-After`` when the client should come back."""
    return {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Overloaded) else {}


def respond_error(ctx: Any, exc: OCRError) -> OCRResponse:
    """Set status and headers on the BentoML context and return the error body."""
    ctx.response.status_code = exc.status
    ctx.response.headers.update(error_headers(exc))
    return error_response(exc)


def json_error(exc: OCRError) -> Any:
    """The same error body as a standalone response (for routes outside ``@bentoml.api``)."""
    from starlette.responses import JSONResponse

    return JSONResponse(error_response(exc).model_dump(), status_code=exc.status, headers=error_headers(exc))
