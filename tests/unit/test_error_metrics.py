"""ErrorCounter: every 4xx/5xx answer counted once in ocr_errors_total by code and status."""

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from ocr_runner.http.metrics import ErrorCounter, ocr_metrics

pytestmark = pytest.mark.unit


async def conflict(request):
    return JSONResponse({"success": False, "error": "job is running", "error_code": "job_conflict"}, status_code=409)


async def plain_404(request):
    return PlainTextResponse("Not Found", status_code=404)


async def ok(request):
    return JSONResponse({"success": True})


async def not_ready(request):
    return PlainTextResponse("not ready", status_code=503)


APP = ErrorCounter(Starlette(routes=[
    Route("/jobs/x/result", conflict), Route("/missing", plain_404), Route("/ocr", ok), Route("/readyz", not_ready),
]))


def errors(code: str, status: int) -> float:
    ocr_metrics()  # registered on first use
    return REGISTRY.get_sample_value("ocr_errors_total", {"code": code, "status": str(status)}) or 0.0


def get(path: str) -> int:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://t") as client:
            return (await client.get(path)).status_code

    return asyncio.run(go())


def test_errors_are_counted_by_body_code_or_status():
    before = {key: errors(*key) for key in (("job_conflict", 409), ("http_404", 404), ("http_503", 503))}
    assert [get("/jobs/x/result"), get("/jobs/x/result"), get("/missing"), get("/ocr"), get("/readyz")] == [
        409, 409, 404, 200, 503,
    ]
    after = {key: errors(*key) for key in before}
    # Probes answer states, not errors; a success is never counted.
    assert after == {
        ("job_conflict", 409): before[("job_conflict", 409)] + 2,
        ("http_404", 404): before[("http_404", 404)] + 1,
        ("http_503", 503): before[("http_503", 503)],
    }
