"""ASGI middleware: optional API keys and per-key rate limiting.

Keys are compared in constant time against every configured key. Health probes,
metrics and the API docs can stay public. Rate limits use the ``limits`` library's
moving window, per key (or per client address when auth is off).
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ErrorCode
from ..settings import SettingsError
from .middleware import Receive, Scope, Send, send_json_error

DOC_PATHS = ("/", "/docs.json", "/schema.json")


def load_keys(keys: Iterable[str], keys_file: str | None) -> tuple[bytes, ...]:
    """Keys from settings plus a file (one per line, ``#`` comments), as bytes."""
    collected = [k.strip() for k in keys if k.strip()]
    if keys_file:
        try:
            text = Path(keys_file).read_text()
        except OSError as exc:
            raise SettingsError(f"invalid configuration: API_KEYS_FILE: cannot read {keys_file} ({exc})") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                collected.append(line)
    return tuple(dict.fromkeys(k.encode() for k in collected))


class ApiKeyAuth:
    def __init__(
        self,
        app: Any,
        *,
        keys: tuple[bytes, ...],
        public_paths: tuple[str, ...],
        rate_limit: str | None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.public_paths = public_paths
        self.limiter = None
        if rate_limit:
            from limits import parse
            from limits.storage import MemoryStorage
            from limits.strategies import MovingWindowRateLimiter

            self.limit = parse(rate_limit)
            self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers") or []}
        identity = self._client(scope)
        if self.keys:
            key = self._presented_key(headers)
            if key is None or not self._valid(key):
                await send_json_error(send, ErrorCode.UNAUTHORIZED, "missing or invalid API key",
                                      headers=[(b"www-authenticate", b'Bearer realm="deepseek-ocr"')])
                return
            identity = "key:" + hmac.new(b"rate", key, "sha256").hexdigest()[:16]
        if self.limiter is not None and not self.limiter.hit(self.limit, identity):
            reset_at, _ = self.limiter.get_window_stats(self.limit, identity)
            retry_after = max(1, math.ceil(reset_at - time.time()))
            await send_json_error(send, ErrorCode.RATE_LIMITED, f"rate limit of {self.limit} exceeded",
                                  headers=[(b"retry-after", str(retry_after).encode())])
            return
        await self.app(scope, receive, send)

    def _is_public(self, path: str) -> bool:
        return path in self.public_paths

    def _valid(self, presented: bytes) -> bool:
        # Compare against every key, so the time taken says nothing about which key matched.
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(presented, key)
        return matched

    @staticmethod
    def _presented_key(headers: dict[str, bytes]) -> bytes | None:
        authorization = headers.get("authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            return authorization[7:].strip()
        return headers.get("x-api-key")

    @staticmethod
    def _client(scope: Scope) -> str:
        client = scope.get("client")
        return f"ip:{client[0]}" if client else "ip:unknown"
