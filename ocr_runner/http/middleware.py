"""ASGI middleware: body size limit (BentoML has none by default), request ids, one error shape."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from .logs import request_id_var

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def send_json_error(
    send: Send, status: int, message: str, code: str, field: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete JSON error response in the service's shape, straight from middleware."""
    body = json.dumps({"success": False, "error": message, "error_code": code, "field": field}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
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
            send, 413, f"request body is larger than the limit of {self.max_body_bytes} bytes", "payload_too_large", "body"
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


class ValidationErrorShape:
    """Give BentoML's request-validation 400s the service's error shape.

    BentoML answers ``{"error": "1 validation error for Input", "detail": [...]}`` while its
    OpenAPI document declares ``detail`` a string. This rewrites such bodies to
    ``{"success": false, "error": ..., "error_code": "invalid_request", "field": ..., "detail": "..."}``,
    which matches both the documented schema and every other error this service returns.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def reshaping_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if message["status"] == 400 and content_type.startswith(b"application/json"):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = _reshape(b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, reshaping_send)


def _reshape(body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or not isinstance(data.get("detail"), list):
        return body
    problems = [p for p in data["detail"] if isinstance(p, dict)]
    fields = [".".join(str(part) for part in p.get("loc", [])) for p in problems]
    messages = [f"{f or 'body'}: {p.get('msg', 'invalid')}" for f, p in zip(fields, problems)]
    return json.dumps(
        {
            "success": False,
            "error": "; ".join(messages) or str(data.get("error", "invalid request")),
            "error_code": "invalid_request",
            "field": fields[0] if fields and fields[0] else None,
            "detail": "; ".join(messages),
        }
    ).encode()


class MalformedMultipart:
    """400 for a multipart body without a boundary (BentoML's form parser raises a 500 on it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            content_type = dict(scope.get("headers") or []).get(b"content-type", b"").lower()
            if content_type.startswith(b"multipart/") and b"boundary=" not in content_type:
                await send_json_error(send, 400, "multipart body without a boundary", "invalid_request", "content-type")
                return
        await self.app(scope, receive, send)
