"""The HTTP edge of errors: one table from domain code to status, one body builder.

Routes, middleware and the reshaping of framework validation errors all answer through
``error_body``, so every error a client sees has one shape:
``{"success": false, "error": ..., "error_code": ..., "field": ...}`` with empty fields left out.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import EngineTimeout, ErrorCode, OCRError, Overloaded

log = logging.getLogger(__name__)

STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.MODEL_NOT_FOUND: 404,
    ErrorCode.JOB_CONFLICT: 409,
    ErrorCode.JOB_FAILED: 409,  # retrying the GET cannot change a failed job
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 422,
    ErrorCode.UNPROCESSABLE: 422,
    ErrorCode.URL_NOT_ALLOWED: 422,
    ErrorCode.URL_FETCH_FAILED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CLIENT_CLOSED_REQUEST: 499,  # nginx's code; the client never reads it
    ErrorCode.ENGINE_FAILURE: 500,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.INTERRUPTED: 503,
    ErrorCode.CANCELLED: 409,
    ErrorCode.TIMEOUT: 504,
}


def status_for(code: ErrorCode | str) -> int:
    try:
        return STATUS[ErrorCode(code)]
    except (ValueError, KeyError):
        return 500


def error_body(code: ErrorCode | str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The one error shape; ``None`` values are left out, as in every response."""
    body = {"success": False, "error": message, "error_code": ErrorCode(code).value, "field": field, **extra}
    return {key: value for key, value in body.items() if value is not None}


def body_of(exc: OCRError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, exc.field)


def headers_of(exc: OCRError) -> dict[str, str]:
    """``Retry-After`` when the client should come back."""
    return {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Overloaded) else {}


def status_of(exc: OCRError) -> int:
    return status_for(exc.code)


def set_error_status(ctx: Any, exc: OCRError) -> None:
    """Status and headers on BentoML's context (which has the last word on a route's answer)."""
    ctx.response.status_code = status_of(exc)
    ctx.response.headers.update(headers_of(exc))


def respond_error(ctx: Any, exc: OCRError) -> Any:
    """For ``@bentoml.api`` routes: the error answer, in the one shape whatever the route's model."""
    set_error_status(ctx, exc)
    return json_error(exc)


def json_error(exc: OCRError) -> Any:
    """The same error as a standalone response (FastAPI routes)."""
    from starlette.responses import JSONResponse

    return JSONResponse(body_of(exc), status_code=status_of(exc), headers=headers_of(exc))


def engine_call_error(exc: Exception) -> OCRError:
    """Classify a failed call to the engine service (overload, timeout, or an outage)."""
    status = getattr(getattr(exc, "error_code", None), "value", None)
    if status in (429, 503):
        return Overloaded("the OCR engine is at capacity; retry shortly")
    if status == 504 or isinstance(exc, TimeoutError) or "timeout" in exc.__class__.__name__.lower():
        return EngineTimeout("the OCR engine did not answer in time")
    log.exception("engine call failed")
    return Overloaded("the OCR engine could not be reached; retry shortly")
