"""A typed Python client for every endpoint: tasks, batches, streams, uploads and jobs.

    from ocr_runner.sdk import OCRClient

    with OCRClient("http://localhost:8000", api_key=None) as client:
        print(client.ocr(Path("page.png")).result)
        for event in client.stream(Path("report.pdf"), task="markdown"):
            print(event)                      # PageResult per page, then the OCRResponse
        job = client.submit_job(Path("book.pdf"), pages="1-40")
        print(client.wait(job.job_id).result)

A document is a path, bytes, or an http(s) URL (sent as ``document_url``). Options are the
service's request options as keywords (``pages``, ``force_ocr``, ``max_new_tokens``...). A
failed request raises ``OCRClientError`` with the service's code, message and field; a server
that cannot be reached raises ``ServerUnreachable``. BentoML's own ``bentoml.SyncHTTPClient``
also works for the task endpoints (``client.ocr(image_base64=...)``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from .schemas import BatchResponse, JobStatus, OCRResponse, PageResult

Document = str | bytes | Path
ROUTES = {"ocr": "/ocr", "markdown": "/document-to-markdown", "figure": "/parse-figure", "locate": "/locate-text"}


class OCRClientError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        self.code, self.field = body.get("error_code"), body.get("field")
        self.message = str(body.get("error") or f"HTTP {status}")
        super().__init__(f"HTTP {status} {self.code}: {self.message}")


class ServerUnreachable(Exception):
    """No answer from the server (down, wrong address, or the connection broke)."""


class OCRClient:
    def __init__(self, url: str = "http://localhost:8000", *, api_key: str | None = None, timeout: float = 600) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def __enter__(self) -> OCRClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- tasks ---------------------------------------------------------------------------------

    def ocr(self, document: Document, **options: Any) -> OCRResponse:
        return self.read(document, "ocr", **options)

    def markdown(self, document: Document, **options: Any) -> OCRResponse:
        return self.read(document, "markdown", **options)

    def parse_figure(self, document: Document, **options: Any) -> OCRResponse:
        return self.read(document, "figure", **options)

    def locate(self, document: Document, text: str, **options: Any) -> OCRResponse:
        return self.read(document, "locate", text_to_locate=text, **options)

    def read(self, document: Document, task: str, **options: Any) -> OCRResponse:
        """Any task; ``describe`` (which has no endpoint of its own) goes through ``/batch``."""
        if task not in ROUTES:
            return self.batch([{**body(document, **options), "task": task}]).results[0]
        return OCRResponse.model_validate(self._json("POST", ROUTES[task], json=body(document, **options)))

    def batch(self, items: list[dict[str, Any]]) -> BatchResponse:
        """Items are request bodies with their ``task`` (build them with ``body(document, ...)``)."""
        return BatchResponse.model_validate(self._json("POST", "/batch", json={"items": items}))

    def stream(self, document: Document, task: str = "ocr", **options: Any) -> Iterator[PageResult | OCRResponse]:
        """Each page as it finishes (``PageResult``), then the whole answer (``OCRResponse``)."""
        try:
            with self._http.stream("POST", "/stream", json={**body(document, **options), "task": task}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise OCRClientError(response.status_code, _body(response))
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind = event.pop("event")
                    if kind == "done" and not event.get("success"):
                        raise OCRClientError(response.status_code, event)
                    yield PageResult.model_validate(event) if kind == "page" else OCRResponse.model_validate(event)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{exc.__class__.__name__}: {exc}") from None

    def upload(self, document: Path | bytes, task: str = "ocr", *, filename: str = "document", **options: Any) -> OCRResponse:
        """``/upload-ocr``: the file as multipart, the options as form fields."""
        data = document.read_bytes() if isinstance(document, Path) else document
        name = document.name if isinstance(document, Path) else filename
        form = {"task": task, **{k: _form_value(v) for k, v in options.items() if v is not None}}
        return OCRResponse.model_validate(self._json("POST", "/upload-ocr", files={"file": (name, data)}, data=form))

    # -- jobs ----------------------------------------------------------------------------------

    def submit_job(self, document: Document, task: str = "ocr", **options: Any) -> JobStatus:
        return JobStatus.model_validate(self._json("POST", "/jobs", json={**body(document, **options), "task": task}))

    def job(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._json("GET", f"/jobs/{job_id}"))

    def job_result(self, job_id: str) -> OCRResponse:
        return OCRResponse.model_validate(self._json("GET", f"/jobs/{job_id}/result"))

    def cancel_job(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._json("DELETE", f"/jobs/{job_id}"))

    def wait(self, job_id: str, *, poll_s: float = 0.5, on_progress: Any = None) -> OCRResponse:
        """Poll until the job ends; ``on_progress(pages_done, pages_total)`` after each poll."""
        while True:
            status = self.job(job_id)
            if on_progress is not None:
                on_progress(status.progress.pages_done, status.progress.pages_total)
            if status.status not in ("queued", "running"):
                return self.job_result(job_id)
            time.sleep(poll_s)

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    # -- internals -----------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{exc.__class__.__name__}: {exc}") from None
        data = _body(response)
        if response.status_code >= 400:
            raise OCRClientError(response.status_code, data)
        return data


def body(document: Document, **options: Any) -> dict[str, Any]:
    """A request body: the document (``image_base64``, or ``document_url`` for a URL) and the options."""
    if isinstance(document, str) and document.startswith(("http://", "https://")):
        source = {"document_url": document}
    else:
        data = Path(document).read_bytes() if isinstance(document, (str, Path)) else document
        source = {"image_base64": base64.b64encode(data).decode()}
    return {**source, **{k: v for k, v in options.items() if v is not None}}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"success": False, "error": response.text[:500] or f"HTTP {response.status_code}"}


def _form_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
