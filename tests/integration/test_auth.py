"""API keys on a real server (the overload server is started with two keys)."""

import httpx
import pytest
from PIL import Image

from tests.helpers import b64, encode

pytestmark = pytest.mark.integration
IMAGE = b64(encode(Image.new("RGB", (64, 64), "white")))


@pytest.mark.parametrize("path", ["/ocr", "/document-to-markdown", "/batch", "/jobs", "/stream", "/upload-ocr"])
def test_every_task_endpoint_needs_a_key(overload_server, path):
    response = httpx.post(overload_server.url + path, json={"image_base64": IMAGE})
    assert response.status_code == 401 and response.json()["error_code"] == "unauthorized"


def test_valid_keys_in_either_header(overload_server):
    for headers in ({"authorization": "Bearer key-one"}, {"x-api-key": "key-two"}):
        response = httpx.post(overload_server.url + "/ocr", json={"image_base64": IMAGE}, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
    wrong = httpx.post(overload_server.url + "/ocr", json={"image_base64": IMAGE}, headers={"x-api-key": "key-three"})
    assert wrong.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json"])
def test_probes_metrics_and_docs_stay_public(overload_server, path):
    assert httpx.get(overload_server.url + path, timeout=30).status_code == 200


def test_request_id_header(overload_server, tiny_server):
    assert httpx.get(tiny_server.url + "/health", headers={"x-request-id": "trace-42"}).headers["x-request-id"] == "trace-42"
    assert len(httpx.post(overload_server.url + "/ocr", json={}).headers["x-request-id"]) == 32
