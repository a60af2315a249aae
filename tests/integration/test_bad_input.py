"""Each row of the error table: a clear 4xx JSON error naming the field, never a 500 or a hang."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from PIL import Image

from tests.helpers import b64, encode, noise_image, render_page
from tests.integration.conftest import BODY_LIMIT
from tests.unit.test_images import png_with_header_size

pytestmark = pytest.mark.integration
GOOD_PNG = encode(Image.new("RGB", (64, 64), "white"))


def ocr(server, **body) -> httpx.Response:
    return httpx.post(server.url + "/ocr", json=body, timeout=60)


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    data = response.json()
    assert data["success"] is False and data["error"]
    if field is not None:
        assert data["field"] == field
    return data


@pytest.mark.parametrize(
    ("image_base64", "status"),
    [
        ("definitely not base64!", 400),  # not base64
        (b64(b"hello, I am text"), 400),  # not an image
        (b64(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), 400),  # unsupported format
        ("", 400),  # empty
        (b64(encode(Image.new("RGB", (256, 256), "red"), "JPEG")[:300]), 400),  # truncated
        (b64(png_with_header_size(0, 16)), 400),  # zero-size
        (b64(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"), 400),  # corrupt PDF
    ],
)
def test_bad_images_name_the_field(tiny_server, image_base64, status):
    assert_error(ocr(tiny_server, image_base64=image_base64), status, "image_base64")


def test_pixel_bomb_is_413(tiny_server):
    data = assert_error(ocr(tiny_server, image_base64=b64(png_with_header_size(50_000, 50_000))), 413, "image_base64")
    assert "pixels" in data["error"]


def test_body_over_the_limit_is_413_with_and_without_content_length(tiny_server):
    body = b'{"image_base64": "' + base64.b64encode(b"\0" * BODY_LIMIT) + b'"}'
    sized = httpx.post(tiny_server.url + "/ocr", content=body, headers={"content-type": "application/json"})
    assert_error(sized, 413, "body")

    def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    chunked = httpx.post(tiny_server.url + "/ocr", content=chunks(), headers={"content-type": "application/json"})
    assert_error(chunked, 413, "body")


def test_upload_over_the_limit_is_413(tiny_server):
    files = {"file": ("big.png", b"\x89PNG" + b"\0" * BODY_LIMIT, "image/png")}
    assert_error(httpx.post(tiny_server.url + "/upload-ocr", files=files), 413, "body")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_size": 37}, "base_size"),
        ({"image_size": 99999}, "image_size"),
        ({"max_new_tokens": 10_000}, "max_new_tokens"),
        ({"prompt": "<image> and <image>"}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt"),
    ],
)
def test_impossible_options_are_422(tiny_server, body, field):
    assert_error(ocr(tiny_server, image_base64=b64(GOOD_PNG), **body), 422, field)


def test_locate_without_text_is_422(tiny_server):
    response = httpx.post(tiny_server.url + "/locate-text", json={"image_base64": b64(GOOD_PNG)})
    assert_error(response, 422, "text_to_locate")


def test_wrong_json_types_are_400(tiny_server):
    for body in ({"image_base64": 123}, {}, [], {"image_base64": b64(GOOD_PNG), "crop_mode": "sometimes"}):
        response = httpx.post(tiny_server.url + "/ocr", json=body)
        assert response.status_code == 400, (body, response.text)
    response = httpx.post(tiny_server.url + "/ocr", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("files", "data", "status"),
    [
        ({"file": ("a.png", GOOD_PNG, "image/png")}, {"task": "translate"}, 422),  # unknown task
        ({"file": ("a.png", GOOD_PNG, "image/png")}, {"task": "123"}, 422),
        ({"file": ("a.txt", b"plain text", "text/plain")}, {"task": "ocr"}, 400),  # not an image
        ({"file": ("a.png", b"", "image/png")}, {"task": "ocr"}, 400),  # empty file
        (None, {"file": "http://127.0.0.1:1/never-fetched", "task": "ocr"}, 422),  # a URL is not a file
        (None, {"task": "ocr"}, 422),  # no file at all
        ({"file": ("a.png", GOOD_PNG, "image/png")}, {"base_size": "abc"}, 422),
        ({"file": ("a.png", GOOD_PNG, "image/png")}, {"task": "locate"}, 422),  # locate needs text
        ({"file": ("a.png", GOOD_PNG, "image/png")}, {"prompt": "x" * (1024 * 1024 + 10)}, 400),  # form field > 1 MB
    ],
)
def test_bad_uploads_are_4xx(tiny_server, files, data, status):
    response = httpx.post(tiny_server.url + "/upload-ocr", files=files, data=data, timeout=60)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")


def test_upload_ignores_extra_files(tiny_server):
    files = {"file": ("a.png", GOOD_PNG, "image/png"), "other": ("b.png", GOOD_PNG, "image/png")}
    assert httpx.post(tiny_server.url + "/upload-ocr", files=files, timeout=60).status_code == 200


def test_overload_is_an_honest_503_with_retry_after(overload_server):
    """Past the engine's queue limit requests are refused at once; every other one is answered."""
    images = [b64(encode(noise_image((600, 400), seed=100 + i))) for i in range(4)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120, headers={"x-api-key": "key-one"}) as client:
            return await asyncio.gather(
                *(client.post(overload_server.url + "/ocr", json={"image_base64": images[i % 4]}) for i in range(48))
            )

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses and 200 in statuses
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["error_code"] == "overloaded"
        else:
            data = response.json()
            assert data["success"] and data["metadata"]["output_tokens"] == 12


def test_service_still_healthy_after_bad_input(tiny_server):
    response = ocr(tiny_server, image_base64=b64(encode(noise_image((128, 128), seed=0))))
    assert response.status_code == 200 and httpx.get(tiny_server.url + "/health").status_code == 200


def test_no_tracebacks_leak_into_responses(tiny_server):
    response = ocr(tiny_server, image_base64=b64(encode(render_page(["x"]), "JPEG")[:200]))
    assert "Traceback" not in response.text and "File \"" not in response.text
