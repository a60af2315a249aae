"""Calling the engine service: retry only where the request cannot have reached the engine.

BentoML's inter-service client keeps idle keep-alive connections to the engine's
uvicorn longer (aiohttp: 15 s) than uvicorn keeps them open (5 s). A request sent
on a connection the engine has just closed fails with a broken pipe or a
disconnect before the engine read it; sending it again on a fresh connection is
safe and does not duplicate GPU work. Timeouts and HTTP errors are never retried.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
STALE_ERRNOS = {errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED}


def is_stale_connection(exc: BaseException) -> bool:
    """True for errors of a connection that closed before the request was read."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - bentoml depends on aiohttp
        aiohttp = None  # type: ignore[assignment]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError) or (aiohttp and isinstance(current, aiohttp.ServerTimeoutError)):
            return False
        if isinstance(current, (BrokenPipeError, ConnectionResetError)):
            return True
        if aiohttp is not None:
            if isinstance(current, aiohttp.ServerDisconnectedError):
                return True
            if isinstance(current, aiohttp.ClientOSError) and current.errno in STALE_ERRNOS:
                return True
        current = current.__cause__ or current.__context__
    return False


async def call_with_reconnect(call: Callable[[], Awaitable[T]], attempts: int = 2) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == attempts or not is_stale_connection(exc):
                raise
            log.warning("engine connection was stale (%s); resending on a fresh one", exc.__class__.__name__)
    raise AssertionError("unreachable")
