"""The evaluation's live-service runner and the PDF text-layer switch, over HTTP against the CPU engine."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ocr_runner.evaluation.manifest import EvalDocument
from ocr_runner.evaluation.metrics import cer
from ocr_runner.evaluation.runners import ServiceRunner
from tests.helpers import b64, make_text_pdf

pytestmark = pytest.mark.integration
LINES = ["Quarterly report 2026", "Invoice total 42.50 EUR"]


def test_text_layer_is_used_unless_force_ocr(rapid_server):
    pdf = b64(make_text_pdf(LINES))
    fast = httpx.post(rapid_server.url + "/document-to-markdown", json={"image_base64": pdf}, timeout=120).json()
    assert fast["success"] and "text layer" in fast["metadata"]["note"]
    forced = httpx.post(rapid_server.url + "/document-to-markdown", json={"image_base64": pdf, "force_ocr": True},
                        timeout=120).json()
    assert forced["success"] and "text layer" not in forced["metadata"]["note"]
    for answer in (fast, forced):
        assert cer("\n".join(LINES), answer["result"]) < 0.1, answer["result"]


def test_service_runner_reads_a_document(rapid_server, tmp_path: Path):
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(make_text_pdf(LINES))
    truth = tmp_path / "page.txt"
    truth.write_text("\n".join(LINES))
    runner = ServiceRunner(rapid_server.url)
    assert "rapidocr" in runner.describe()
    assert cer(truth.read_text(), runner.read(EvalDocument("page.pdf", pdf, truth, ("printed",)))) < 0.1
