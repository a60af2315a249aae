"""ASGI middleware: body size limit (BentoML has none by default), request ids, one error shape."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from ..errors import ErrorCode
from .errors import error_body, status_for
from .logs import request_id_var

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def send_json_error(
    send: Send, code: ErrorCode, message: str, field: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete JSON error response in the service's shape, straight from middleware."""
    body = json.dumps(error_body(code, message, field)).encode()
    await send({
        "type": "http.response.start",
        "status": status_for(code),
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Reject bodies over ``max_body_bytes`` with 413, from Content-Length or by counting chunks."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._reject(send)
            return
        if length is None:
            # Chunked upload: buffer it (the framework would anyway) so the limit applies before parsing.
            chunks: list[bytes] = []
            received = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunks.append(message.get("body", b""))
                received += len(chunks[-1])
                if received > self.max_body_bytes:
                    await self._reject(send)
                    return
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    async def _reject(self, send: Send) -> None:
        await send_json_error(
            send, ErrorCode.PAYLOAD_TOO_LARGE, f"request body is larger than the limit of {self.max_body_bytes} bytes",
            "body",
        )


class RequestId:
    """Echo a safe incoming ``X-Request-ID`` or mint one, on every response."""

    _SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import uuid

        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"")
        request_id = incoming if 0 < len(incoming) <= 128 and set(incoming) <= self._SAFE else uuid.uuid4().hex.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id)]}
            await send(message)

        token = request_id_var.set(request_id.decode())  # for the log lines this request causes
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class ErrorBodyRewrite:
    """Base of middleware that rewrites JSON error answers: buffers the body of the answers
    ``wants`` picks and sends what ``rewrite`` makes of it (status and body)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def wants(self, scope: Scope, status: int) -> bool:
        raise NotImplementedError

    def rewrite(self, status: int, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if content_type.startswith(b"application/json") and self.wants(scope, message["status"]):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                status, body = self.rewrite(start["status"], b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                await send({**start, "status": status,
                            "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, rewriting_send)


class ValidationErrorShape(ErrorBodyRewrite):
    """Give the frameworks' request-validation errors the service's one error shape.

    BentoML answers a body that fails validation with 400 ``{"error": "1 validation error for
    Input", "detail": [...]}`` and FastAPI with 422 ``{"detail": [...]}``. Both become
    ``error_body`` answers naming the fields at fault; a field the request model does not know
    is a 422 (``unprocessable``) on every route, a wrong type stays the framework's 400/422.
    """

    def wants(self, scope: Scope, status: int) -> bool:
        return status in (400, 422)

    def rewrite(self, status: int, body: bytes) -> tuple[int, bytes]:
        return _reshape(status, body)


# Where a framework puts the request part before the field name in an error's location.
_LOCATION_PREFIXES = ("body", "query", "path", "form")


def _reshape(status: int, body: bytes) -> tuple[int, bytes]:
    try:
        data = json.loads(body)
    except ValueError:
        return status, body
    if not isinstance(data, dict) or not isinstance(data.get("detail"), list) or "success" in data:
        return status, body
    problems = [p for p in data["detail"] if isinstance(p, dict)]
    fields = [_field_name(p.get("loc", [])) for p in problems]
    unknown = [f for f, p in zip(fields, problems) if p.get("type") == "extra_forbidden"]
    if unknown:
        message = f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
        return 422, json.dumps(error_body(ErrorCode.UNPROCESSABLE, message, unknown[0])).encode()
    messages = [f"{f or 'body'}: {p.get('msg', 'invalid')}" for f, p in zip(fields, problems)]
    code = ErrorCode.INVALID_REQUEST if status == 400 else ErrorCode.UNPROCESSABLE
    text = "; ".join(messages) or str(data.get("error", "invalid request"))
    return status, json.dumps(error_body(code, text, fields[0] if fields and fields[0] else None, detail=text)).encode()


def _field_name(location: list[Any]) -> str:
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in _LOCATION_PREFIXES:
        parts = parts[1:]
    return ".".join(parts)


class MalformedMultipart:
    """400 for a multipart body without a boundary (BentoML's form parser raises a 500 on it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            content_type = dict(scope.get("headers") or []).get(b"content-type", b"").lower()
            if content_type.startswith(b"multipart/") and b"boundary=" not in content_type:
                await send_json_error(send, ErrorCode.INVALID_REQUEST, "multipart body without a boundary", "content-type")
                return
        await self.app(scope, receive, send)
