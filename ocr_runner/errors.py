"""Typed errors that carry the HTTP status they map to at the edge."""

from __future__ import annotations


class OCRError(Exception):
    """Base class: a request-level failure with a status code and the field at fault."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(OCRError):
    """The request is malformed: not base64, not an image, empty, truncated."""

    status = 400
    code = "invalid_input"


class UnsupportedMediaType(OCRError):
    """A recognised file type this endpoint cannot read (e.g. a PDF where an image is expected)."""

    status = 422
    code = "unsupported_media_type"


class PayloadTooLarge(OCRError):
    """Body or image exceeds a configured limit."""

    status = 413
    code = "payload_too_large"


class UnprocessableRequest(OCRError):
    """Well-formed but semantically invalid: unknown task, impossible resolution mode."""

    status = 422
    code = "unprocessable"


class EngineItemFailed(OCRError):
    """The engine failed on this one item (the rest of its batch is unaffected)."""

    status = 500
    code = "engine_failure"


class Overloaded(OCRError):
    """The engine's queue is full or its latency limit was exceeded."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EngineTimeout(OCRError):
    status = 504
    code = "timeout"


class ClientDisconnected(OCRError):
    """The client went away before its answer was ready; the work left was cancelled (nginx's 499)."""

    status = 499
    code = "client_closed_request"
