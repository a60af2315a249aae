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
