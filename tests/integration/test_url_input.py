"""Documents by URL: read from a local server the settings allow; every address the settings do not
allow (loopback, link-local, metadata, names and redirects that lead there) refused with a 4xx."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import encode, make_pdf, render_page
from tests.integration.conftest import URL_TEST_HOST

pytestmark = pytest.mark.integration
LINES = ["Remittance advice 5521", "Net amount 88.40"]


@pytest.fixture(scope="module")
def documents() -> Iterator[str]:
    """A document server on 127.0.0.2: a page, a PDF, an HTML page, redirects and a 404."""
    page = encode(render_page(LINES))
    pdf = make_pdf([["Statement page one"], ["Statement page two"]])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            routes = {"/page.png": ("image/png", page), "/doc.pdf": ("application/pdf", pdf),
                      "/index.html": ("text/html", b"<html>not a document</html>")}
            if self.path.startswith("/to/"):
                self.send_response(302)
                self.send_header("Location", self.path.removeprefix("/to"))
                self.end_headers()
                return
            if self.path == "/to-loopback":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/page.png")
                self.end_headers()
                return
            if self.path not in routes:
                self.send_error(404)
                return
            kind, body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{URL_TEST_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_page_by_url_is_read(rapid_server, documents):
    response = httpx.post(rapid_server.url + "/ocr", json={"document_url": documents + "/page.png"}, timeout=120)
    assert response.status_code == 200, response.text
    assert "Remittance advice 5521" in response.json()["result"]


def test_a_redirect_within_allowed_hosts_is_followed_and_pdfs_work_everywhere(rapid_server, documents):
    url = documents + "/to/doc.pdf"
    read = httpx.post(rapid_server.url + "/ocr", json={"document_url": url, "pages": "2"}, timeout=120).json()
    assert read["success"] and "page two" in read["result"] and read["metadata"]["pages_selected"] == [2]
    batch = httpx.post(rapid_server.url + "/batch", timeout=120, json={"items": [
        {"document_url": documents + "/page.png"}, {"document_url": documents + "/missing.png"}]}).json()
    assert [item["status"] for item in batch["results"]] == [200, 422]
    assert batch["results"][1]["error_code"] == "url_fetch_failed"
    form = httpx.post(rapid_server.url + "/upload-ocr", data={"document_url": documents + "/page.png"}, timeout=120)
    assert form.status_code == 200 and "Net amount" in form.json()["result"], form.text


@pytest.mark.parametrize(
    ("make_url", "code"),
    [
        (lambda docs, port: f"http://127.0.0.1:{port}/page.png", "url_not_allowed"),
        (lambda docs, port: f"http://[::1]:{port}/page.png", "url_not_allowed"),
        (lambda docs, port: "http://169.254.169.254/latest/meta-data/", "url_not_allowed"),
        (lambda docs, port: f"http://localhost:{port}/page.png", "url_not_allowed"),  # a name resolving to loopback
        (lambda docs, port: docs + "/to-loopback", "url_not_allowed"),  # a redirect to loopback
        (lambda docs, port: "file:///etc/passwd", "url_not_allowed"),
        (lambda docs, port: docs + "/index.html", "url_fetch_failed"),  # not an image or a PDF
        (lambda docs, port: docs + "/missing.png", "url_fetch_failed"),
    ],
)
def test_urls_outside_the_allowed_hosts_are_refused(rapid_server, documents, make_url, code):
    url = make_url(documents, documents.rsplit(":", 1)[1])
    response = httpx.post(rapid_server.url + "/ocr", json={"document_url": url}, timeout=60)
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["error_code"] == code and data["field"] == "document_url", data


def test_a_document_is_base64_or_a_url_not_both(rapid_server, documents):
    image = base64.b64encode(encode(render_page(LINES))).decode()
    both = httpx.post(rapid_server.url + "/ocr", json={"image_base64": image, "document_url": documents + "/page.png"})
    assert both.status_code == 400 and "one of the two" in both.json()["error"]
