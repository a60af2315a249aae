import asyncio
import errno

import aiohttp
import pytest

from ocr_runner.http.engine_client import call_with_reconnect, is_stale_connection

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("exc", "stale"),
    [
        (BrokenPipeError(), True),
        (aiohttp.ClientOSError(errno.EPIPE, "Broken pipe"), True),
        (aiohttp.ServerDisconnectedError(), True),
        (ConnectionResetError(), True),
        (aiohttp.ServerTimeoutError(), False),
        (asyncio.TimeoutError(), False),
        (aiohttp.ClientOSError(errno.ENOSPC, "disk"), False),
        (ValueError("bad"), False),
    ],
)
def test_only_connection_staleness_is_retryable(exc, stale):
    assert is_stale_connection(exc) is stale


def test_stale_cause_is_found_through_the_chain():
    try:
        try:
            raise BrokenPipeError
        except BrokenPipeError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_stale_connection(outer)


def test_resends_after_a_stale_connection_but_not_after_other_errors():
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise aiohttp.ServerDisconnectedError()
        return "ok"

    assert asyncio.run(call_with_reconnect(flaky)) == "ok" and len(calls) == 2

    async def broken():
        calls.append(1)
        raise ValueError("engine said no")

    calls.clear()
    with pytest.raises(ValueError):
        asyncio.run(call_with_reconnect(broken))
    assert len(calls) == 1
