"""Typed errors with a domain code; no HTTP here.

Every layer below the HTTP edge (documents, pipeline, engines, jobs) reports what went
wrong as an ``ErrorCode``. The edge (``ocr_runner.http.errors``) maps each code to its
status and headers in one table, so a code that crosses the engine boundary arrives intact.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    INVALID_INPUT = "invalid_input"  # not base64, not an image, empty, truncated
    INVALID_REQUEST = "invalid_request"  # malformed request: wrong JSON types, broken multipart
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNPROCESSABLE = "unprocessable"  # well-formed but impossible: unknown task or field, bad mode
    URL_NOT_ALLOWED = "url_not_allowed"  # a document URL aimed at a loopback, private or metadata address
    URL_FETCH_FAILED = "url_fetch_failed"  # a document URL that could not be fetched
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    JOB_NOT_FOUND = "job_not_found"
    MODEL_NOT_FOUND = "model_not_found"  # the OpenAI protocol's model field names another model
    JOB_CONFLICT = "job_conflict"
    JOB_FAILED = "job_failed"
    CLIENT_CLOSED_REQUEST = "client_closed_request"
    ENGINE_FAILURE = "engine_failure"
    INTERNAL_ERROR = "internal_error"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    # Jobs only: how a job ended without a result.
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


class OCRError(Exception):
    """A request-level failure: its code, a message for the client and the request field at fault."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(OCRError):
    """The document is malformed: not base64, not an image, empty, truncated."""

    code = ErrorCode.INVALID_INPUT


class UnsupportedMediaType(OCRError):
    """A recognised file type this endpoint cannot read (e.g. a PDF where an image is expected)."""

    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class PayloadTooLarge(OCRError):
    """Body or image exceeds a configured limit."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnprocessableRequest(OCRError):
    """Well-formed but semantically invalid: unknown task, impossible resolution mode, input the model rejects."""

    code = ErrorCode.UNPROCESSABLE


class EngineItemFailed(OCRError):
    """The engine failed on this one item (the rest of its batch is unaffected)."""

    code = ErrorCode.ENGINE_FAILURE


class Overloaded(OCRError):
    """The engine's queue is full or its latency limit was exceeded; come back after ``retry_after_s``."""

    code = ErrorCode.OVERLOADED

    def __init__(self, message: str, *, retry_after_s: int = 5, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s


class EngineTimeout(OCRError):
    code = ErrorCode.TIMEOUT


class ClientDisconnected(OCRError):
    """The client went away before its answer was ready; the work left was cancelled."""

    code = ErrorCode.CLIENT_CLOSED_REQUEST


class JobNotFound(OCRError):
    code = ErrorCode.JOB_NOT_FOUND


class ModelNotFound(OCRError):
    code = ErrorCode.MODEL_NOT_FOUND


class Interrupted(OCRError):
    """The work stopped before it finished (the server is shutting down); it is resumed, not lost."""

    code = ErrorCode.INTERRUPTED


class JobConflict(OCRError):
    """The job is not in a state that allows this (result of an unfinished job, cancel a finished one)."""

    code = ErrorCode.JOB_CONFLICT


class UrlNotAllowed(OCRError):
    code = ErrorCode.URL_NOT_ALLOWED


class UrlFetchFailed(OCRError):
    code = ErrorCode.URL_FETCH_FAILED


# The error an engine's per-page code stands for (engines report codes, not exceptions, across processes).
_BY_CODE: dict[ErrorCode, type[OCRError]] = {
    ErrorCode.INVALID_INPUT: InvalidInput,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: UnsupportedMediaType,
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ErrorCode.UNPROCESSABLE: UnprocessableRequest,
    ErrorCode.OVERLOADED: Overloaded,
    ErrorCode.TIMEOUT: EngineTimeout,
}


def error_for(code: str | ErrorCode | None, message: str, *, field: str | None = None) -> OCRError:
    """The typed error for a code reported across a boundary; an unknown code is an engine failure."""
    try:
        kind = _BY_CODE.get(ErrorCode(code), EngineItemFailed)
    except ValueError:
        kind = EngineItemFailed
    return kind(message, field=field)
