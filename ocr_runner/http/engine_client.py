"""Calling the engine service: the policy for a page's call, and a resend only where the request
cannot have reached the engine.

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
from typing import Any, TypeVar

from ..engines.base import EnginePage, EngineResult
from ..errors import ErrorCode, Overloaded
from .errors import engine_call_error

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


class EngineCaller:
    """The policy for one page's call to the engine service: counted in flight, resent once on a
    stale connection, its failures classified (``engine_call_error``), and a page the engine
    refused because it was full raised as ``Overloaded`` like a refusal of the call itself, so
    that both batching paths look the same to the orchestrator (jobs wait either out).
    """

    def __init__(self, call: Callable[[list[EnginePage]], Awaitable[list[EngineResult]]], inflight: Any = None) -> None:
        self._call = call
        self._inflight = inflight

    async def __call__(self, page: EnginePage) -> EngineResult:
        if self._inflight is not None:
            self._inflight.inc()
        try:
            [result] = await call_with_reconnect(lambda: self._call([page]))
        except Exception as exc:  # noqa: BLE001 - classified into overload, timeout or outage
            raise engine_call_error(exc) from exc
        finally:
            if self._inflight is not None:
                self._inflight.dec()
        if result.error_code is ErrorCode.OVERLOADED:
            raise Overloaded(result.error or "the OCR engine is at capacity; retry shortly")
        return result
