"""Every endpoint over real HTTP against a real `bentoml serve`."""

from __future__ import annotations

import json

import httpx
import pytest
from PIL import Image

from tests.helpers import b64, encode, noise_image, render_page

pytestmark = pytest.mark.integration
LINES = ["Shipping label 7731", "Deliver to Berlin office", "Fragile handle with care"]
JSON_ENDPOINTS = {
    "/ocr": "ocr",
    "/document-to-markdown": "markdown",
    "/parse-figure": "figure",
    "/locate-text": "locate",
}


def post(server, path: str, **body) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


def test_health_says_which_engine_and_why(tiny_server, rapid_server):
    tiny = httpx.get(tiny_server.url + "/health").json()
    assert tiny["status"] == "ok" and tiny["engine"] == "deepseek" and tiny["model_loaded"] is True
    import torch

    assert tiny["cuda_available"] is torch.cuda.is_available() and tiny["device"] == "cpu"
    assert (tiny["gpu_name"] is None) is (not torch.cuda.is_available())
    assert tiny["reason"] == "ENGINE=deepseek"
    assert (tiny["batching"], tiny["max_batch_size"]) == ("continuous", 8)
    rapid = httpx.get(rapid_server.url + "/health").json()
    assert rapid["engine"] == "rapidocr" and rapid["reason"] == "ENGINE=rapidocr"
    assert rapid["batching"] == "none"


@pytest.mark.parametrize("probe", ["/healthz", "/livez", "/readyz", "/metrics"])
def test_bentoml_probes_stay_on(tiny_server, probe):
    assert httpx.get(tiny_server.url + probe).status_code == 200


def test_swagger_ui_and_schema_list_every_endpoint(tiny_server):
    assert "swagger" in httpx.get(tiny_server.url + "/").text.lower()
    paths = httpx.get(tiny_server.url + "/docs.json").json()["paths"]
    assert {*JSON_ENDPOINTS, "/upload-ocr", "/health"} <= set(paths)
    assert paths["/ocr"]["post"]["description"].startswith("Free OCR")


@pytest.mark.parametrize(("path", "task"), JSON_ENDPOINTS.items())
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_json_endpoints_on_the_tiny_model(tiny_server, path, task, fmt):
    image = noise_image((500, 300), seed=3)
    body = {"image_base64": b64(encode(image, fmt))}
    if task == "locate":
        body["text_to_locate"] = "Total"
    response = post(tiny_server, path, **body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True and isinstance(data["result"], str)
    meta = data["metadata"]
    assert meta["task"] == task and meta["engine"] == "deepseek" and meta["output_tokens"] == 12
    assert (meta["image_width"], meta["image_height"]) == (500, 300)
    assert meta["requested_mode"] == {"base_size": 1024, "image_size": 640, "crop_mode": True}
    assert meta["effective_mode"] == {"base_size": 1024, "image_size": 768, "crop_mode": True}
    assert meta["prompt"].startswith("<image>\n")


def test_effective_mode_reports_the_snap(tiny_server):
    image = b64(encode(noise_image((300, 300), seed=1)))
    meta = post(tiny_server, "/ocr", image_base64=image, base_size=640, image_size=640, crop_mode=False).json()["metadata"]
    assert meta["requested_mode"] == {"base_size": 640, "image_size": 640, "crop_mode": False}
    assert meta["effective_mode"] == {"base_size": 768, "image_size": 768, "crop_mode": False}


def test_custom_prompt_and_token_cap(tiny_server):
    image = b64(encode(noise_image((200, 200), seed=2)))
    data = post(tiny_server, "/ocr", image_base64=image, prompt="Read the text.", max_new_tokens=4).json()
    assert data["metadata"]["prompt"] == "<image>\nRead the text." and data["metadata"]["output_tokens"] == 4


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_cpu_engine_reads_a_rendered_page(rapid_server, fmt):
    response = post(rapid_server, "/ocr", image_base64=b64(encode(render_page(LINES), fmt)))
    assert response.status_code == 200, response.text
    data = response.json()
    assert [line.strip() for line in data["result"].splitlines() if line.strip()] == LINES
    assert data["metadata"]["engine"] == "rapidocr" and "effective_mode" not in data["metadata"]


def test_cpu_engine_locates_text_in_pixels(rapid_server):
    page = render_page(LINES)
    data = post(rapid_server, "/locate-text", image_base64=b64(encode(page)), text_to_locate="Berlin").json()
    [box] = data["boxes"]
    assert box["label"] == "Berlin"
    # Cross-check against the pixels: the box must hold dark (text) pixels and sit on line 2.
    crop = page.crop((box["x1"], box["y1"], box["x2"], box["y2"])).convert("L")
    assert min(crop.getdata()) < 100 and 80 < box["y1"] < box["y2"] < 150


@pytest.mark.parametrize("task", ["ocr", "markdown", "figure", "locate", "describe"])
def test_upload_every_task_on_the_cpu_engine(rapid_server, task):
    files = {"file": ("page.jpg", encode(render_page(LINES), "JPEG"), "image/jpeg")}
    response = httpx.post(
        rapid_server.url + "/upload-ocr", files=files, data={"task": task, "text_to_locate": "Fragile"}, timeout=60
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] and data["metadata"]["task"] == task
    if task == "locate":
        assert [b["label"] for b in data["boxes"]] == ["Fragile"]
    else:
        assert "Deliver to Berlin office" in data["result"]


def test_upload_on_the_tiny_model_with_options(tiny_server):
    files = {"file": ("x.tiff", encode(noise_image((400, 250), seed=5), "TIFF"), "image/tiff")}
    data = httpx.post(
        tiny_server.url + "/upload-ocr",
        files=files,
        data={"task": "markdown", "base_size": "1024", "image_size": "1024", "crop_mode": "false"},
        timeout=60,
    ).json()
    assert data["metadata"]["effective_mode"] == {"base_size": 1024, "image_size": 1024, "crop_mode": False}


def test_exif_rotated_jpeg_reports_upright_size(tiny_server):
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = encode(noise_image((300, 100), seed=4), "JPEG", exif=exif)
    meta = post(tiny_server, "/ocr", image_base64=b64(jpeg)).json()["metadata"]
    assert (meta["image_width"], meta["image_height"]) == (100, 300)


def test_python_client(tiny_server, rapid_server):
    import bentoml

    with bentoml.SyncHTTPClient(rapid_server.url, timeout=120) as client:
        result = client.ocr(image_base64=b64(encode(render_page(LINES))))
        assert "Shipping label 7731" in result["result"]
    with bentoml.SyncHTTPClient(tiny_server.url, timeout=120) as client:
        result = client.document_to_markdown(image_base64=b64(encode(noise_image((256, 256), seed=9))))
        assert result["success"] and result["metadata"]["engine"] == "deepseek"


def test_ocr_metrics_count_pages_tokens_and_errors(tiny_server):
    import re

    httpx.post(tiny_server.url + "/ocr", json={"image_base64": b64(encode(noise_image((64, 64), seed=77)))}, timeout=60)
    httpx.post(tiny_server.url + "/ocr", json={"image_base64": "%%%"}, timeout=60)
    metrics = httpx.get(tiny_server.url + "/metrics").text

    def value(pattern: str) -> float:
        found = re.findall(pattern + r"\S* ([0-9.e+]+)", metrics)
        return sum(float(v) for v in found)

    assert value(r'ocr_pages_total\{[^}]*engine="deepseek"[^}]*outcome="read"') >= 1
    assert value(r'ocr_output_tokens_total\{[^}]*engine="deepseek"') >= 12
    assert value(r'ocr_errors_total\{[^}]*code="invalid_input"[^}]*status="400"') >= 1
    assert "ocr_engine_inflight_pages" in metrics


def test_stream_and_batch_errors_are_counted(tiny_server):
    import re

    def errors(code: str) -> float:
        metrics = httpx.get(tiny_server.url + "/metrics").text
        return sum(float(v) for v in re.findall(r'ocr_errors_total\{[^}]*code="' + code + r'"[^}]*\} ([0-9.e+]+)', metrics))

    stream = httpx.post(tiny_server.url + "/stream", json={"image_base64": "%%%"}, timeout=60)
    stream_code = json.loads(stream.text.splitlines()[-1])["error_code"]
    batch = httpx.post(tiny_server.url + "/batch", json={"items": []}, timeout=60).json()
    before = {code: errors(code) for code in (stream_code, batch["error_code"])}
    httpx.post(tiny_server.url + "/stream", json={"image_base64": "%%%"}, timeout=60)
    httpx.post(tiny_server.url + "/batch", json={"items": []}, timeout=60)
    after = {code: errors(code) for code in before}
    expected = {code: before[code] + (2 if stream_code == batch["error_code"] else 1) for code in before}
    assert after == expected
