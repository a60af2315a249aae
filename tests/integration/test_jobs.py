"""Async jobs over HTTP: submit, progress, result, cancel, unknown ids, bad input at submit."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers import b64, make_pdf

pytestmark = pytest.mark.integration


def wait_for(server, job_id: str, states: set[str], timeout_s: float = 120) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.url}/jobs/{job_id}").json()
        seen.append(status)
        if status["status"] in states:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {seen[-1]}")


def test_job_lifecycle_with_progress(rapid_server):
    pages = [["Job page one"], ["Job page two"], ["Job page three"], ["Job page number four"]]
    response = httpx.post(rapid_server.url + "/jobs", json={"image_base64": b64(make_pdf(pages)), "task": "ocr"}, timeout=60)
    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["status"] in {"queued", "running"} and submitted["progress"]["pages_total"] == 4
    seen = wait_for(rapid_server, submitted["job_id"], {"completed", "failed"})
    assert seen[-1]["status"] == "completed" and seen[-1]["progress"] == {"pages_done": 4, "pages_total": 4}
    done_counts = [s["progress"]["pages_done"] for s in seen]
    assert done_counts == sorted(done_counts)
    result = httpx.get(rapid_server.url + submitted["result_url"]).json()
    assert [" ".join(p["result"].split()) for p in result["pages"]] == [" ".join(p) for p in pages]


def test_cancel_a_running_job(rapid_server):
    pdf = make_pdf([[f"Cancel me page {i}"] for i in range(6)])
    job = httpx.post(rapid_server.url + "/jobs", json={"image_base64": b64(pdf)}, timeout=60).json()
    cancelled = httpx.delete(f"{rapid_server.url}/jobs/{job['job_id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["progress"]["pages_done"] < 6
    assert httpx.get(f"{rapid_server.url}/jobs/{job['job_id']}/result").status_code == 409
    assert httpx.delete(f"{rapid_server.url}/jobs/{job['job_id']}").status_code == 409
    time.sleep(1)
    assert httpx.get(f"{rapid_server.url}/jobs/{job['job_id']}").json()["status"] == "cancelled"


def test_result_before_completion_is_409(rapid_server):
    pdf = make_pdf([[f"Slow page {i}"] for i in range(5)])
    job = httpx.post(rapid_server.url + "/jobs", json={"image_base64": b64(pdf)}, timeout=60).json()
    early = httpx.get(f"{rapid_server.url}/jobs/{job['job_id']}/result")
    assert early.status_code == 409 and early.json()["error_code"] == "job_conflict"
    wait_for(rapid_server, job["job_id"], {"completed"})


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_job_is_404(rapid_server, method):
    response = getattr(httpx, method)(f"{rapid_server.url}/jobs/0123456789abcdef")
    assert response.status_code == 404 and response.json()["error_code"] == "job_not_found"
    assert httpx.get(f"{rapid_server.url}/jobs/nope/result").status_code == 404


def test_bad_documents_fail_at_submit_not_later(rapid_server):
    for body, status in (
        ({"image_base64": "%%%"}, 400),
        ({"image_base64": b64(make_pdf([["x"]])), "pages": "5"}, 400),
        ({"image_base64": b64(make_pdf([["x"]])), "task": "poetry"}, 422),
        ({"task": "ocr"}, 422),
    ):
        response = httpx.post(rapid_server.url + "/jobs", json=body, timeout=60)
        assert response.status_code == status, (body, response.text)


def test_job_errors_are_counted_in_metrics(rapid_server):
    import re

    def errors() -> dict[tuple[str, str], float]:
        text = httpx.get(rapid_server.url + "/metrics").text
        found = re.findall(r'ocr_errors_total\{code="([^"]+)",status="(\d+)"\} ([0-9.e+]+)', text)
        return {(code, status): float(value) for code, status, value in found}

    before = errors()
    assert httpx.post(rapid_server.url + "/jobs", json={"image_base64": "%%%"}, timeout=60).status_code == 400
    assert httpx.get(f"{rapid_server.url}/jobs/0123456789abcdef").status_code == 404
    assert httpx.delete(f"{rapid_server.url}/jobs/0123456789abcdef").status_code == 404
    assert httpx.get(f"{rapid_server.url}/jobs/0123456789abcdef/result").status_code == 404
    job = httpx.post(rapid_server.url + "/jobs", json={"image_base64": b64(make_pdf([["Counted"]] * 3))}, timeout=60)
    early = httpx.get(f"{rapid_server.url}/jobs/{job.json()['job_id']}/result")
    wait_for(rapid_server, job.json()["job_id"], {"completed"})
    after = errors()
    grew = {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}
    expected = {("invalid_input", "400"): 1.0, ("job_not_found", "404"): 3.0}
    if early.status_code == 409:  # the job may already have finished; then its result is no error
        expected[("job_conflict", "409")] = 1.0
    assert grew == expected
