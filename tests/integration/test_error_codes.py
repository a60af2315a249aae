"""Errors keep their code from the engine to the client, on both batching paths, in one shape.

The engine reports a domain code for a page (``unprocessable``, ``overloaded``...); the HTTP
edge alone turns it into a status. Every route answers errors with the same body.
"""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import pytest
from PIL import Image

from tests.helpers import encode, noise_image

pytestmark = pytest.mark.integration

ERROR_KEYS = {"success", "error", "error_code", "field", "detail", "job_status", "original_status"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def thin_pdf() -> bytes:
    """A one-page PDF 100 times wider than tall: the page renders, the engine refuses to read it."""
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 30), "white").save(buffer, format="PDF", resolution=100.0)
    return buffer.getvalue()


def assert_one_shape(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    data = response.json()
    assert set(data) <= ERROR_KEYS, data
    assert None not in data.values(), data
    assert data["success"] is False and data["error"] and data["error_code"] == code, data
    return data


@pytest.mark.parametrize("server_name", ["tiny_server", "static_server"])
def test_an_engine_rejection_of_a_page_is_a_422_on_both_batching_paths(server_name, request):
    server = request.getfixturevalue(server_name)
    response = httpx.post(server.url + "/ocr", json={"image_base64": b64(thin_pdf())}, timeout=120)
    data = assert_one_shape(response, 422, "unprocessable")
    assert "too thin" in data["error"] and data["field"] == "image"


def test_an_engine_rejection_of_a_page_is_a_422_on_the_cpu_engine(rapid_server):
    response = httpx.post(rapid_server.url + "/ocr", json={"image_base64": b64(thin_pdf())}, timeout=120)
    assert_one_shape(response, 422, "unprocessable")


@pytest.mark.parametrize(("server_name", "headers"), [("overload_server", {"x-api-key": "key-two"}),
                                                       ("static_server", {})])
def test_a_full_engine_is_a_503_with_retry_after_on_both_batching_paths(server_name, headers, request):
    server = request.getfixturevalue(server_name)
    images = [b64(encode(noise_image((320, 240), seed=300 + i))) for i in range(6)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=180, headers=headers) as client:
            return await asyncio.gather(
                *(client.post(server.url + "/ocr", json={"image_base64": images[i % 6]}) for i in range(48))
            )

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503} and 503 in statuses and 200 in statuses, statuses
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) > 0
            assert_one_shape(response, 503, "overloaded")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ocr", {"page": "1"}),  # a typo of pages: it used to read every page
        ("/ocr", {"task": "markdown"}),  # the task is the route's
        ("/document-to-markdown", {"text_to_locate": "x"}),
        ("/parse-figure", {"colour": "red"}),
        ("/locate-text", {"text_to_locate": "x", "lang": "en"}),
        ("/stream", {"page": "1"}),
        ("/jobs", {"page": "1"}),
    ],
)
def test_unknown_json_fields_are_a_422_naming_them(rapid_server, path, body):
    image = b64(encode(noise_image((64, 64), seed=1)))
    response = httpx.post(rapid_server.url + path, json={"image_base64": image, **body}, timeout=60)
    unknown = next(k for k in body if k != "text_to_locate" or path == "/document-to-markdown")
    data = assert_one_shape(response, 422, "unprocessable")
    assert data["field"] == unknown and unknown in data["error"]


def test_unknown_batch_item_and_form_fields_are_a_422_naming_them(rapid_server):
    image = encode(noise_image((64, 64), seed=2))
    item = httpx.post(rapid_server.url + "/batch", json={"items": [{"image_base64": b64(image), "page": "1"}]})
    assert assert_one_shape(item, 422, "unprocessable")["field"] == "items.0.page"
    form = httpx.post(rapid_server.url + "/upload-ocr", files={"file": ("a.png", image, "image/png")},
                      data={"task": "ocr", "page": "1"}, timeout=60)
    assert assert_one_shape(form, 422, "unprocessable")["field"] == "page"


def test_every_option_exists_on_every_task_route(rapid_server):
    """The options that had drifted: force_ocr on /parse-figure and /locate-text, prompt on /locate-text."""
    from tests.helpers import make_text_pdf

    pdf = b64(make_text_pdf(["Invoice 2041 paid"]))
    for path, extra in (("/parse-figure", {}), ("/locate-text", {"text_to_locate": "Invoice"})):
        layer = httpx.post(rapid_server.url + path, json={"image_base64": pdf, **extra}, timeout=120).json()
        forced = httpx.post(rapid_server.url + path, json={"image_base64": pdf, "force_ocr": True, **extra},
                            timeout=120).json()
        assert layer["success"] and forced["success"], (layer, forced)
        assert "text layer" not in (forced["metadata"].get("note") or "")
    located = httpx.post(rapid_server.url + "/locate-text", timeout=120, json={
        "image_base64": pdf, "text_to_locate": "Invoice", "prompt": "<image>\nWhere is <|ref|>Invoice<|/ref|>?"}).json()
    assert located["success"] and located["metadata"]["prompt"] == "<image>\nWhere is <|ref|>Invoice<|/ref|>?"
    assert located["boxes"] and located["boxes"][0]["label"] == "Invoice"


def test_errors_from_every_layer_have_one_shape(rapid_server, tiny_server, overload_server):
    url = rapid_server.url
    image = b64(encode(noise_image((64, 64), seed=3)))
    assert_one_shape(httpx.post(url + "/ocr", json={"image_base64": 5}), 400, "invalid_request")  # validation
    assert_one_shape(httpx.post(url + "/ocr", json={"image_base64": "%%%"}), 400, "invalid_input")  # route
    assert_one_shape(httpx.post(url + "/ocr", json={"image_base64": image, "base_size": 37}), 422, "unprocessable")
    assert_one_shape(httpx.post(url + "/jobs", json={"image_base64": 5}), 422, "unprocessable")  # FastAPI's
    assert_one_shape(httpx.get(url + "/jobs/0123abcd"), 404, "job_not_found")
    assert_one_shape(httpx.post(tiny_server.url + "/ocr", content=b"x" * 3_000_000,  # the body limit (middleware)
                                headers={"content-type": "application/json"}), 413, "payload_too_large")
    assert_one_shape(httpx.post(overload_server.url + "/ocr", json={"image_base64": image}), 401, "unauthorized")
    assert_one_shape(httpx.post(url + "/upload-ocr", content=b"--x--",
                                headers={"content-type": "multipart/form-data"}), 400, "invalid_request")
    streamed = httpx.post(url + "/stream", json={"image_base64": "%%%"})
    assert streamed.status_code == 400
    line = streamed.json()
    assert line.pop("event") == "done" and set(line) <= ERROR_KEYS and None not in line.values()
    batched = httpx.post(url + "/batch", json={"items": [{"image_base64": "%%%"}]}).json()
    item = batched["results"][0]
    assert item["status"] == 400 and item["error_code"] == "invalid_input" and None not in item.values()
