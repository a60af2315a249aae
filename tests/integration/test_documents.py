"""PDFs and multi-page input, batches, streaming and the result cache, over real HTTP."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import b64, encode, make_pdf, noise_image, render_page
from tests.integration.conftest import MAX_PDF_PAGES

pytestmark = pytest.mark.integration
PAGES = [["Alpha page first"], ["Bravo page second"], ["Charlie page third"], ["Delta page fourth"]]
EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return make_pdf(PAGES)


def words(text: str) -> str:
    return " ".join(text.split())


def test_pdf_pages_come_back_in_order(rapid_server, pdf):
    response = httpx.post(rapid_server.url + "/ocr", json={"image_base64": b64(pdf)}, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [p["page"] for p in data["pages"]] == [1, 2, 3, 4]
    assert [words(p["result"]) for p in data["pages"]] == [" ".join(p) for p in PAGES]
    assert data["result"].split("<--- Page Split --->")[2].strip() == "Charlie page third"
    meta = data["metadata"]
    assert meta["document_type"] == "pdf" and meta["page_count"] == 4 and meta["pages_selected"] == [1, 2, 3, 4]
    assert all(p["timings"]["engine_ms"] >= 0 for p in data["pages"])


def test_page_range_and_boxes_carry_page_numbers(rapid_server, pdf):
    body = {"image_base64": b64(pdf), "pages": "2,4", "text_to_locate": "page"}
    data = httpx.post(rapid_server.url + "/locate-text", json=body, timeout=120).json()
    assert data["metadata"]["pages_selected"] == [2, 4]
    assert sorted({box["page"] for box in data["boxes"]}) == [2, 4]


def test_pdf_upload_with_pages(rapid_server, pdf):
    files = {"file": ("doc.pdf", pdf, "application/pdf")}
    data = httpx.post(rapid_server.url + "/upload-ocr", files=files, data={"task": "markdown", "pages": "3-"}, timeout=120)
    assert data.status_code == 200, data.text
    assert [words(p["result"]) for p in data.json()["pages"]] == ["Charlie page third", "Delta page fourth"]


@pytest.mark.skipif(not EVAL.exists(), reason="../shared/eval is not beside this checkout")
def test_real_pdf_from_the_eval_set_reads(rapid_server):
    pdf = (EVAL / "docling" / "amt_handbook_sample.pdf").read_bytes()
    data = httpx.post(rapid_server.url + "/ocr", json={"image_base64": b64(pdf)}, timeout=180).json()
    expected = (EVAL / "docling" / "amt_handbook_sample.md").read_text()
    found = set(data["result"].lower().split())
    wanted = {w for w in expected.lower().split() if w.isalpha() and len(w) > 4}
    assert len(found & wanted) / len(wanted) > 0.7


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"pages": "9"}, 400, "pages"),
        ({"pages": "2-1"}, 400, "pages"),
        ({"pages": "x"}, 400, "pages"),
    ],
)
def test_bad_page_ranges(rapid_server, pdf, body, status, field):
    response = httpx.post(rapid_server.url + "/ocr", json={"image_base64": b64(pdf), **body}, timeout=60)
    assert response.status_code == status and response.json()["field"] == field


def test_bad_pdfs_are_4xx(rapid_server, pdf):
    import pypdf
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt("secret")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    too_long = make_pdf([["x"]] * (MAX_PDF_PAGES + 1))
    cases = [(encrypted.getvalue(), 400, "encrypted"), (pdf[: len(pdf) // 3], 400, "PDF"), (b"%PDF-1.4\n%%EOF", 400, "PDF"),
             (too_long, 413, f"limit of {MAX_PDF_PAGES}")]
    for data, status, words_in_error in cases:
        response = httpx.post(rapid_server.url + "/ocr", json={"image_base64": b64(data)}, timeout=60)
        assert response.status_code == status, response.text
        assert words_in_error in response.json()["error"]


def test_batch_keeps_order_and_isolates_failures(rapid_server, pdf):
    items = [
        {"image_base64": b64(encode(render_page(["Batch item zero"])))},
        {"image_base64": "not base64!"},
        {"image_base64": b64(pdf), "task": "markdown", "pages": "1"},
        {"image_base64": b64(encode(render_page(["Batch item three"]))), "task": "nonsense"},
        {"image_base64": b64(encode(render_page(["Batch item four"]), "JPEG")), "task": "locate", "text_to_locate": "four"},
    ]
    response = httpx.post(rapid_server.url + "/batch", json={"items": items}, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is False
    results = data["results"]
    assert [r["status"] for r in results] == [200, 400, 200, 422, 200]
    assert words(results[0]["result"]) == "Batch item zero"
    assert results[1]["field"] == "image_base64" and results[3]["field"] == "task"
    assert words(results[2]["result"]) == "Alpha page first"
    assert [b["label"] for b in results[4]["boxes"]] == ["four"]


def test_batch_pages_count_together_against_the_limit(rapid_server, pdf):
    items = [{"image_base64": b64(pdf)}, {"image_base64": b64(pdf)}]  # 4 + 4 pages > MAX_PDF_PAGES (6)
    response = httpx.post(rapid_server.url + "/batch", json={"items": items}, timeout=60)
    assert response.status_code == 413 and "limit of 6" in response.json()["error"]


def test_batch_limits(rapid_server):
    empty = httpx.post(rapid_server.url + "/batch", json={"items": []})
    assert empty.status_code == 422 and empty.json()["field"] == "items" and "1 to" in empty.json()["error"]
    bad_field = httpx.post(rapid_server.url + "/batch", json={"items": [{"image_base64": "x", "colour": "red"}]})
    # An unknown field is named, as on every route (it used to be a generic 400).
    assert bad_field.status_code == 422 and bad_field.json()["field"] == "items.0.colour"


def test_stream_is_read_incrementally(rapid_server):
    # Pages no other test sends, so that none is answered from the cache.
    streamed = [["Streaming first sheet"], ["Streaming second sheet"], ["Streaming third sheet"], ["Streaming last sheet"]]
    pdf = make_pdf(streamed)
    events = []
    arrival = []
    with httpx.stream("POST", rapid_server.url + "/stream", json={"image_base64": b64(pdf)}, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        for line in response.iter_lines():
            if line.strip():
                events.append(json.loads(line))
                arrival.append(time.monotonic())
    assert [e["event"] for e in events] == ["page"] * 4 + ["done"]
    assert sorted(e["page"] for e in events[:4]) == [1, 2, 3, 4]
    done = events[-1]
    assert done["success"] and [words(p["result"]) for p in done["pages"]] == [" ".join(p) for p in streamed]
    # Pages arrive as their batches finish (two per batch here), not all at once at the end.
    assert arrival[-1] - arrival[0] > 0.2


def test_stream_errors_before_the_first_page(rapid_server):
    response = httpx.post(rapid_server.url + "/stream", json={"image_base64": "%%%"}, timeout=60)
    assert response.status_code == 400
    [line] = [json.loads(x) for x in response.text.splitlines() if x.strip()]
    assert line["event"] == "done" and line["success"] is False and line["field"] == "image_base64"


def test_stream_through_the_python_client(rapid_server, pdf):
    import bentoml

    with bentoml.SyncHTTPClient(rapid_server.url, timeout=120) as client:
        chunks = list(client.stream(image_base64=b64(pdf), pages="1-2"))
    lines = [json.loads(x) for x in "".join(chunks).splitlines() if x.strip()]
    assert [x["event"] for x in lines] == ["page", "page", "done"]


def test_cache_hit_on_repeat(rapid_server):
    image = b64(encode(render_page(["Cache me if you can"])))
    first = httpx.post(rapid_server.url + "/ocr", json={"image_base64": image}, timeout=60).json()
    second = httpx.post(rapid_server.url + "/ocr", json={"image_base64": image}, timeout=60).json()
    assert first["metadata"]["cache_hit"] is False and second["metadata"]["cache_hit"] is True
    assert second["result"] == first["result"]
    other_task = httpx.post(rapid_server.url + "/document-to-markdown", json={"image_base64": image}, timeout=60).json()
    assert other_task["metadata"]["cache_hit"] is False


def test_pdf_pages_fill_engine_batches(tiny_server):
    pdf = make_pdf([[f"page {i}"] for i in range(6)])
    data = httpx.post(tiny_server.url + "/ocr", json={"image_base64": b64(pdf), "crop_mode": False}, timeout=120).json()
    assert len(data["pages"]) == 6 and data["metadata"]["batch_size"] > 1
    assert max(p["batch_size"] for p in data["pages"]) > 1


def test_a_single_image_keeps_the_seed_shape(tiny_server):
    image = noise_image((300, 300), seed=42)
    single = httpx.post(tiny_server.url + "/ocr", json={"image_base64": b64(encode(image))}, timeout=60).json()
    assert single["pages"] == [] and single["metadata"]["document_type"] == "image"


def test_annotated_page_shows_the_located_words(rapid_server):
    import base64

    from PIL import Image

    page = render_page(["Annotate this word please"])
    body = {"image_base64": b64(encode(page)), "text_to_locate": "word", "annotate": True, "include_images": True}
    data = httpx.post(rapid_server.url + "/locate-text", json=body, timeout=60).json()
    [box] = data["boxes"]
    [annotated] = data["annotated_images"]
    drawn = Image.open(io.BytesIO(base64.b64decode(annotated["image_base64"]))).convert("RGB")
    assert drawn.size == page.size and annotated["page"] == 1
    assert drawn.getpixel((box["x1"], (box["y1"] + box["y2"]) // 2)) not in {(255, 255, 255), (0, 0, 0)}
    assert data["images"] == []  # the CPU engine finds no figures; nothing is invented


def test_image_outputs_are_off_by_default(rapid_server):
    data = httpx.post(rapid_server.url + "/ocr", json={"image_base64": b64(encode(render_page(["Plain"])))}, timeout=60)
    assert data.json()["annotated_images"] == [] and data.json()["images"] == []
