"""Structured logs carry the client's request id; a client that leaves cancels its remaining work."""

import json
import time
import uuid

import httpx
import pytest

from tests.helpers import b64, encode, make_pdf, render_page

pytestmark = pytest.mark.integration


def json_lines(server, request_id: str, deadline_s: float = 20) -> list[dict]:
    """The server's JSON log records for one request id (waits for them to be written)."""
    deadline = time.monotonic() + deadline_s
    while True:
        records = []
        # Complete lines only: the server may be halfway through writing the last one.
        for line in server.log_path.read_text(errors="replace").split("\n")[:-1]:
            if request_id in line and line.lstrip().startswith("{"):
                records.append(json.loads(line))
        if records or time.monotonic() > deadline:
            return records
        time.sleep(0.3)


def test_log_lines_are_json_with_the_request_id(rapid_server):
    request_id = f"log-check-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        rapid_server.url + "/ocr",
        json={"image_base64": b64(encode(render_page(["Logged request"])))},
        headers={"X-Request-ID": request_id},
        timeout=120,
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == request_id
    [record] = [r for r in json_lines(rapid_server, request_id) if r["message"] == "document answered"]
    assert record["request_id"] == request_id and record["level"] == "INFO"
    assert (record["task"], record["pages"], record["failed_pages"], record["success"]) == ("ocr", 1, 0, True)
    assert record["engine"] == "rapidocr" and record["ms"] > 0 and "time" in record


def test_a_client_that_leaves_cancels_the_rest_of_its_document(rapid_server):
    request_id = f"gone-{uuid.uuid4().hex[:8]}"
    pdf = make_pdf([[f"Abandoned page {n}"] for n in range(6)])
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            rapid_server.url + "/ocr", json={"image_base64": b64(pdf)},
            headers={"X-Request-ID": request_id}, timeout=httpx.Timeout(30, read=0.5),
        )
    records = json_lines(rapid_server, request_id)
    assert any(r["message"] == "client disconnected; request cancelled" for r in records), records
    time.sleep(2)
    # The request never completes as answered, and the server still serves others.
    assert not any(r["message"] == "document answered" for r in json_lines(rapid_server, request_id, 0))
    ok = httpx.post(rapid_server.url + "/ocr", json={"image_base64": b64(encode(render_page(["Still here"])))}, timeout=120)
    assert ok.status_code == 200 and ok.json()["result"] == "Still here"
