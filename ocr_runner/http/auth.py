"""ASGI middleware: optional API keys and per-key rate limiting.

Keys are compared in constant time against every configured key. Health probes,
metrics and the API docs can stay public. The key's id (a hash, never the key) goes into
the request's ASGI state as ``api_key_id``: jobs belong to it. Rate limits use the
``limits`` library's moving window, per key (or per client address when auth is off), in
Redis when ``redis_url`` is set so that every replica counts against one budget. Job status
polls (``GET /jobs/...``) have their own budget (``poll_rate_limit``), or none, so a client
waiting for its job does not lock itself out of OCR.
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


def key_id(key: bytes) -> str:
    """A stable id for a key that does not reveal it (rate-limit buckets, job owners)."""
    return hmac.new(b"rate", key, "sha256").hexdigest()[:16]


def _storage(redis_url: str | None, prefix: str) -> Any:
    from limits.aio.storage import MemoryStorage, RedisStorage

    if not redis_url:
        return MemoryStorage()
    scheme, rest = redis_url.split("://", 1)
    return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix=f"{prefix}limits")


class ApiKeyAuth:
    def __init__(
        self,
        app: Any,
        *,
        keys: tuple[bytes, ...],
        public_paths: tuple[str, ...],
        rate_limit: str | None,
        poll_rate_limit: str | None = None,
        redis_url: str | None = None,
        redis_prefix: str = "ocr:",
    ) -> None:
        from limits import parse

        self.app = app
        self.keys = keys
        self.public_paths = public_paths
        self.limit = parse(rate_limit) if rate_limit else None
        self.poll_limit = parse(poll_rate_limit) if poll_rate_limit else None
        self.limiter = None
        if self.limit or self.poll_limit:
            from limits.aio.strategies import MovingWindowRateLimiter

            self.limiter = MovingWindowRateLimiter(_storage(redis_url, redis_prefix))

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
            identity = "key:" + key_id(key)
            scope.setdefault("state", {})["api_key_id"] = key_id(key)
        poll = scope.get("method") == "GET" and scope["path"].startswith("/jobs/")
        limit, budget = (self.poll_limit, "poll") if poll else (self.limit, "ocr")
        if self.limiter is not None and limit is not None and not await self.limiter.hit(limit, budget, identity):
            reset_at, _ = await self.limiter.get_window_stats(limit, budget, identity)
            retry_after = max(1, math.ceil(reset_at - time.time()))
            await send_json_error(send, ErrorCode.RATE_LIMITED, f"rate limit of {limit} exceeded",
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
