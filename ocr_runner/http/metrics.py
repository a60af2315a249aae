"""OCR-specific Prometheus metrics, beside BentoML's own request, latency and batch-size ones.

Created inside the worker (``OcrMetrics()`` in the service's ``__init__``), after BentoML has
set up prometheus_client's multiprocess directory, so they appear on ``/metrics``.
"""

from __future__ import annotations

from ..errors import OCRError
from ..schemas import OCRResponse


class OcrMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge

        self.documents = Counter("ocr_documents", "Documents answered", ["task", "document_type", "engine"])
        self.pages = Counter("ocr_pages", "Pages processed", ["task", "engine", "outcome"])
        self.output_tokens = Counter("ocr_output_tokens", "Tokens generated", ["task", "engine"])
        self.errors = Counter("ocr_errors", "Requests answered with an error", ["code", "status"])
        self.engine_inflight = Gauge(
            "ocr_engine_inflight_pages", "Pages sent to the engine and not yet answered", multiprocess_mode="livesum"
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

    def record_error(self, exc: OCRError) -> None:
        self.errors.labels(exc.code, str(exc.status)).inc()


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

