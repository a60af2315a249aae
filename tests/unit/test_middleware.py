"""The ASGI middleware on a minimal Starlette app, over httpx's ASGI transport."""

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from ocr_runner.http.auth import ApiKeyAuth, load_keys
from ocr_runner.http.middleware import BodySizeLimit, RequestId

pytestmark = pytest.mark.unit


async def echo(request):
    body = await request.body()
    return JSONResponse({"bytes": len(body)})


APP = Starlette(routes=[Route("/ocr", echo, methods=["POST"]), Route("/health", echo, methods=["GET"])])


def call(app, method, path, **kwargs):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_api_keys_required_except_public_paths(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nfile-key\n\n")
    keys = load_keys(["env-key"], str(key_file))
    app = ApiKeyAuth(APP, keys=keys, public_paths=("/health",), rate_limit=None)
    assert call(app, "GET", "/health").status_code == 200
    missing = call(app, "POST", "/ocr")
    assert missing.status_code == 401 and missing.json()["error_code"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert call(app, "POST", "/ocr", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert call(app, "POST", "/ocr", headers={"authorization": "Bearer env-key"}).status_code == 200
    assert call(app, "POST", "/ocr", headers={"x-api-key": "file-key"}).status_code == 200
    assert call(app, "POST", "/ocr", headers={"x-api-key": "file-ke"}).status_code == 401


def test_rate_limit_per_key_with_retry_after():
    app = ApiKeyAuth(APP, keys=(b"a", b"b"), public_paths=(), rate_limit="3/minute")
    statuses = [call(app, "POST", "/ocr", headers={"x-api-key": "a"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = call(app, "POST", "/ocr", headers={"x-api-key": "a"})
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert call(app, "POST", "/ocr", headers={"x-api-key": "b"}).status_code == 200  # another key has its own budget


def test_body_limit_with_and_without_content_length():
    app = BodySizeLimit(APP, max_body_bytes=1000)
    assert call(app, "POST", "/ocr", content=b"x" * 1000).json() == {"bytes": 1000}
    assert call(app, "POST", "/ocr", content=b"x" * 1001).status_code == 413

    async def chunks():
        yield b"x" * 600
        yield b"x" * 600

    too_big = call(app, "POST", "/ocr", content=chunks())
    assert too_big.status_code == 413 and too_big.json()["field"] == "body"

    async def small_chunks():
        yield b"x" * 300
        yield b"x" * 300

    assert call(app, "POST", "/ocr", content=small_chunks()).json() == {"bytes": 600}


def test_request_id_echoed_when_safe_minted_otherwise():
    app = RequestId(APP)
    assert call(app, "GET", "/health", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    minted = call(app, "GET", "/health", headers={"x-request-id": "bad id\r\n"}).headers["x-request-id"]
    assert len(minted) == 32 and minted != "bad id"


def test_validation_errors_get_the_service_error_shape():
    from ocr_runner.http.middleware import ValidationErrorShape

    async def bentoml_like(request):
        detail = [{"type": "string_type", "loc": ["image_base64"], "msg": "Input should be a valid string"}]
        return JSONResponse({"error": "1 validation error for Input", "detail": detail}, status_code=400)

    async def ours(request):
        return JSONResponse({"success": False, "error": "x", "field": "image_base64"}, status_code=400)

    app = ValidationErrorShape(Starlette(routes=[Route("/a", bentoml_like, methods=["POST"]), Route("/b", ours, methods=["POST"])]))
    reshaped = call(app, "POST", "/a")
    assert reshaped.status_code == 400
    assert reshaped.json() == {
        "success": False,
        "error": "image_base64: Input should be a valid string",
        "error_code": "invalid_request",
        "field": "image_base64",
        "detail": "image_base64: Input should be a valid string",
    }
    assert call(app, "POST", "/b").json() == {"success": False, "error": "x", "field": "image_base64"}
