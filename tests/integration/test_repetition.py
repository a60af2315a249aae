"""Repetition loops over HTTP: the tiny random model loops by itself on some pages.

A page that loops is detected, read once more with the stricter guard, and the response, the
metrics and the CLI say so; a page that does not loop is answered token for token as it was
before loop handling existed (an in-process engine with REPETITION_RETRY off is the reference).
"""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ocr_runner.engines import create_engine
from ocr_runner.settings import load_settings
from tests.helpers import BentoServer, b64, encode, engine_page, make_pdf, noise_image, render_page

pytestmark = pytest.mark.integration

CAP = 48
# On the seeded tiny checkpoint with the default guard (30-gram over 90 tokens) and a 48-token cap:
LOOPS = encode(noise_image((300, 900), 1))  # tiles: ends at the cap in a repeating block
CLEAN = encode(render_page(["Hello world"]))  # also runs to the cap, but its tail does not repeat


@pytest.fixture(scope="module")
def loop_server(tiny_checkpoint, tmp_path_factory):
    with BentoServer(
        {"ENGINE": "deepseek", "DEVICE": "cpu", "MODEL_NAME": str(tiny_checkpoint), "MAX_NEW_TOKENS": str(CAP),
         "MAX_BATCH_SIZE": "4", "CACHE_ENABLED": "false", "MAX_LATENCY_MS": "120000"},
        tmp_path_factory.mktemp("repetition") / "repetition.log",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def reference(tiny_checkpoint):
    """The same model and settings with loop handling off: what a page read before this existed."""
    settings = load_settings(model_name=str(tiny_checkpoint), engine="deepseek", device="cpu", batching="static",
                             max_new_tokens=CAP, repetition_retry=False)
    return create_engine(settings)


def ocr(server, image: bytes) -> dict:
    response = httpx.post(server.url + "/ocr", json={"image_base64": b64(image)}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_page_that_does_not_loop_is_untouched_token_for_token(loop_server, reference):
    answer = ocr(loop_server, CLEAN)
    before = reference.run_batch([engine_page(CLEAN)])[0]
    assert before.repetition is None and before.output_tokens == CAP
    assert "repetition" not in answer["metadata"]
    assert (answer["raw_result"], answer["metadata"]["output_tokens"]) == (before.text, before.output_tokens)


def test_a_looping_page_is_detected_retried_and_reported(loop_server, reference):
    before = reference.run_batch([engine_page(LOOPS)])[0]
    assert before.repetition is None  # handling off: the loop goes out as it is
    answer = ocr(loop_server, LOOPS)
    loops = answer["metadata"]["repetition"]
    assert loops["detected"] and loops["retried"] and loops["pages"] == [1]
    assert loops["reason"] == "stopped at its token cap with a repeating tail"
    assert "stricter guard" in loops["how"]
    assert loops["trimmed"] is bool(loops["trimmed_pages"])
    assert answer["raw_result"] != before.text  # the retry's reading (or the cut one), not the loop
    # The server batches continuously; the static path handles the page the same way, token for token.
    static = create_engine(reference.settings.model_copy(update={"repetition_retry": True}))
    assert answer["raw_result"] == static.run_batch([engine_page(LOOPS)])[0].text

    metrics = httpx.get(loop_server.url + "/metrics", timeout=30).text
    detected = [line for line in metrics.splitlines()
                if line.startswith("ocr_repetition_pages_total") and 'outcome="detected"' in line]
    assert detected and float(detected[0].rsplit(" ", 1)[1]) >= 1


def test_pdf_pages_say_which_looped(loop_server):
    pdf = make_pdf([["Hello world"], ["x y z"] * 5])
    response = httpx.post(loop_server.url + "/ocr", json={"image_base64": b64(pdf)}, timeout=300)
    assert response.status_code == 200, response.text
    answer = response.json()
    looped = [page["page"] for page in answer["pages"] if "repetition" in page]
    assert looped == (answer["metadata"].get("repetition") or {}).get("pages", [])
    for page in answer["pages"]:
        if "repetition" in page:
            assert page["repetition"]["detected"] and page["repetition"]["retried"]


def test_the_cli_says_a_page_looped(loop_server, tmp_path):
    image = tmp_path / "loops.png"
    image.write_bytes(LOOPS)
    cli = Path(sys.executable).with_name("deepseek-ocr")
    result = subprocess.run([str(cli), "--image", str(image), "--task", "ocr", "--server", loop_server.url],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "repetition loop on page 1: stopped at its token cap with a repeating tail; retried (" in result.stderr
