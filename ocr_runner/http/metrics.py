"""OCR-specific Prometheus metrics, beside BentoML's own request, latency and batch-size ones.

Created lazily inside the worker (``ocr_metrics()``, first called from the service's
``__init__``), after BentoML has set up prometheus_client's multiprocess directory, so they
appear on ``/metrics``. One instance per process: prometheus_client refuses a second
registration of the same name.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from ..schemas import OCRResponse

# Probe answers are states (not ready yet), not errors a client was given.
UNCOUNTED_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
# Error bodies are small; a larger one is not ours and is counted by its status alone.
MAX_ERROR_BODY = 65536


class OcrMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge

        self.documents = Counter("ocr_documents", "Documents answered", ["task", "document_type", "engine"])
        self.pages = Counter("ocr_pages", "Pages processed", ["task", "engine", "outcome"])
        self.output_tokens = Counter("ocr_output_tokens", "Tokens generated", ["task", "engine"])
        self.repetition = Counter(
            "ocr_repetition_pages", "Pages that looped: detected, retried, recovered by the retry, trimmed",
            ["outcome", "engine"],
        )
        self.errors = Counter("ocr_errors", "Requests answered with an error, and jobs failed", ["code", "status"])
        self.engine_inflight = Gauge(
            "ocr_engine_inflight_pages", "Pages sent to the engine and not yet answered", multiprocess_mode="livesum"
        )
        # Set from the engine's health at every /health answer: 1 while a fallback engine serves (see /health's reason).
        self.engine_degraded = Gauge(
            "ocr_engine_degraded", "1 when the engine serving is a fallback for the one planned (/health says why)",
            multiprocess_mode="livemax",
        )

    def record(self, response: OCRResponse) -> None:
        meta = response.metadata
        if meta is None:
            return
        self.documents.labels(meta.task, meta.document_type, meta.engine).inc()
        pages = response.pages or []
        failed = len(meta.failed_pages)
        cached = sum(1 for p in pages if p.cache_hit) if pages else int(meta.cache_hit)
        total = len(meta.pages_selected)
        for outcome, count in (("cached", cached), ("failed", failed), ("read", total - cached - failed)):
            if count:
                self.pages.labels(meta.task, meta.engine, outcome).inc(count)
        if meta.output_tokens:
            self.output_tokens.labels(meta.task, meta.engine).inc(meta.output_tokens)
        loops = meta.repetition
        if loops is not None and not meta.cache_hit:
            recovered = len(set(loops.retried_pages) - set(loops.trimmed_pages))
            for outcome, count in (("detected", len(loops.pages)), ("retried", len(loops.retried_pages)),
                                   ("recovered", recovered), ("trimmed", len(loops.trimmed_pages))):
                self.repetition.labels(outcome, meta.engine).inc(count)

    def count_error(self, code: str, status: int) -> None:
        self.errors.labels(code, str(status)).inc()


@functools.cache
def ocr_metrics() -> OcrMetrics:
    """This process's metrics (created on first use)."""
    return OcrMetrics()


class ErrorCounter:
    """Count every answer with a 4xx/5xx status in ``ocr_errors_total``, whichever layer gave it.

    Routes, the auth and body-limit middleware and BentoML's own validation all answer errors;
    counting here, outermost, sees each once. The code is the body's ``error_code`` (the
    service's error shape), else ``http_<status>``.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()
        counted = False

        def count() -> None:
            nonlocal counted
            if not counted:
                counted = True
                ocr_metrics().count_error(_error_code(bytes(body)) or f"http_{status}", status)

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 400:
                if len(body) <= MAX_ERROR_BODY:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    count()
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            status = status or 500  # the server answers an uncaught exception with a 500
            raise
        finally:
            if status >= 400:
                count()  # an answer cut short (client gone, exception) is still counted


def _error_code(body: bytes) -> str | None:
    if not body or len(body) > MAX_ERROR_BODY:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    code = data.get("error_code") if isinstance(data, dict) else None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):  # OpenAI's shape, under /v1
        code = data["error"].get("code")
    return code if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else None


class EngineMetrics:
    """The engine worker's own: rows decoded together at each step and pages waiting for a row.

    With continuous batching BentoML forms no batches, so its adaptive batch-size histogram stays
    empty; these say what the GPU actually ran.
    """

    ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

    def __init__(self) -> None:
        from prometheus_client import Gauge, Histogram

        self.rows = Histogram("ocr_decode_batch_rows", "Pages decoded together in one step", buckets=self.ROW_BUCKETS)
        self.waiting = Gauge(
            "ocr_engine_waiting_pages", "Pages queued for a place in the running batch", multiprocess_mode="livesum"
        )

    def observe_step(self, rows: int, waiting: int) -> None:
        self.rows.observe(rows)
        self.waiting.set(waiting)

