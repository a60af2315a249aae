"""The `deepseek-ocr` console script against a real server."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import encode, make_pdf, render_page

pytestmark = pytest.mark.integration
CLI = Path(sys.executable).with_name("deepseek-ocr")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=300)


def test_image_ocr_prints_the_text(rapid_server, tmp_path):
    image = tmp_path / "label.png"
    image.write_bytes(encode(render_page(["Command line reading"])))
    result = run("--image", str(image), "--task", "ocr", "--server", rapid_server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Command line reading"


def test_pdf_all_tasks_to_a_folder_with_progress(rapid_server, tmp_path):
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(make_pdf([["Folder page one"], ["Folder page two"]]))
    out = tmp_path / "out"
    result = run("--image", str(pdf), "--task", "all", "--text", "two", "--output", str(out), "--server", rapid_server.url)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["doc.figure.md", "doc.locate.txt", "doc.markdown.md", "doc.ocr.txt"]
    assert "Folder page two" in (out / "doc.ocr.txt").read_text()
    assert "2/2 pages" in result.stderr


def test_json_output_and_failures_set_the_exit_code(rapid_server, tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(encode(render_page(["Json please"])))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    result = run("--image", str(good), str(bad), "--json", "--server", rapid_server.url)
    assert result.returncode == 1
    assert "bad.png ocr: HTTP 400" in result.stderr
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["success"] is True and "Json please" in first["result"] and first["file"].endswith("good.png")
    assert second["success"] is False and second["field"] == "image_base64"


def test_locate_needs_text():
    assert run("--image", "x.png", "--task", "locate").returncode == 2


def test_a_server_that_is_down_is_one_line(tmp_path):
    image = tmp_path / "label.png"
    image.write_bytes(encode(render_page(["Nobody listening"])))
    result = run("--image", str(image), "--server", "http://127.0.0.1:9")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "deepseek-ocr: cannot reach the server at http://127.0.0.1:9 (ConnectError: [Errno 111] Connection refused)"]


def test_describe_force_ocr_and_annotate(rapid_server, tmp_path):
    from tests.helpers import make_text_pdf

    pdf = tmp_path / "layer.pdf"
    pdf.write_bytes(make_text_pdf(["Annotated invoice 9932"]))
    boxes = tmp_path / "boxes"
    result = run("--image", str(pdf), "--task", "locate", "--text", "invoice", "--force-ocr", "--annotate",
                 str(boxes), "--json", "--server", rapid_server.url)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["boxes"] and "text layer" not in (answer["metadata"].get("note") or "")  # recognised, not the layer
    assert [p.name for p in boxes.iterdir()] == ["layer.locate.page1.png"]
    described = run("--image", str(pdf), "--task", "describe", "--server", rapid_server.url)
    assert described.returncode == 0 and "Annotated invoice 9932" in described.stdout, described.stderr


def test_the_python_client_covers_uploads_jobs_and_streams(rapid_server, tmp_path):
    from ocr_runner.schemas import OCRResponse, PageResult
    from ocr_runner.sdk import OCRClient, OCRClientError

    pdf = make_pdf([["Client sheet one"], ["Client sheet two"]])
    with OCRClient(rapid_server.url) as client:
        assert "Client sheet two" in client.upload(pdf, filename="two.pdf", pages="2").result
        events = list(client.stream(pdf))
        assert [type(e) for e in events] == [PageResult, PageResult, OCRResponse] and events[-1].success
        job = client.submit_job(pdf, "ocr")
        assert client.wait(job.job_id).pages[1].result == "Client sheet two"
        try:
            client.ocr(b"not an image")
        except OCRClientError as exc:
            assert (exc.status, exc.code, exc.field) == (400, "invalid_input", "image_base64")
        else:
            raise AssertionError("an unreadable document must raise")
