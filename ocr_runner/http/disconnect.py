"""Stop a request's work when its client goes away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..errors import ClientDisconnected

log = logging.getLogger(__name__)
T = TypeVar("T")
# How often a running request checks that its client is still connected.
POLL_S = 0.5


async def until_disconnected(ctx: Any, work: Awaitable[T]) -> T:
    """Run ``work``; if the client goes away first, cancel it so its unsent pages never reach the engine.

    Pages already at the engine finish there (a batch cannot drop one member), but a long PDF
    stops after them instead of occupying the GPU for nobody. ``ctx`` is BentoML's context.
    """
    task = asyncio.ensure_future(work)
    request = getattr(ctx, "request", None)
    while request is not None:
        done, _ = await asyncio.wait({task}, timeout=POLL_S)
        if done:
            break
        if await request.is_disconnected():
            task.cancel()
            log.info("client disconnected; request cancelled")
            raise ClientDisconnected("the client closed the connection before the answer was ready")
    return await task
