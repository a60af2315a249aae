"""Internal results turned into the JSON clients get: jobs, batch items, stream events."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ..errors import ErrorCode, JobConflict, OCRError
from ..jobs import JobRecord, JobState
from ..schemas import BatchItemResult, JobProgress, JobStatus, OCRResponse, PageResult
from .errors import body_of, error_body, status_for, status_of


def job_status(record: JobRecord) -> JobStatus:
    def iso(timestamp: float) -> str:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()

    return JobStatus(
        job_id=record.job_id,
        status=record.state.value,
        task=record.task,
        progress=JobProgress(pages_done=record.pages_done, pages_total=record.pages_total),
        created_at=iso(record.created_at),
        updated_at=iso(record.updated_at),
        error=record.error,
        error_code=record.error_code,
        result_url=f"/jobs/{record.job_id}/result",
    )


def job_result(record: JobRecord) -> tuple[dict[str, Any], int]:
    """A job's result body and status: the response once completed, an error body otherwise.

    A failed job answers 409, not its own error's status (retrying the GET cannot change it);
    ``original_status`` says what the error would have been on a request of its own.
    """
    if record.state is JobState.COMPLETED and record.result is not None:
        return record.result, 200
    if record.state is JobState.FAILED:
        code = record.error_code or ErrorCode.INTERNAL_ERROR
        body = error_body(code, record.error or "the job failed", job_status="failed",
                          original_status=status_for(code))
        return body, status_for(ErrorCode.JOB_FAILED)
    conflict = JobConflict(f"job is {record.state.value}", field="job_id")
    return body_of(conflict), status_of(conflict)


def batch_item(answer: OCRResponse | OCRError) -> BatchItemResult:
    """One ``/batch`` item with the status it would have had on its own."""
    if isinstance(answer, OCRError):
        return BatchItemResult(**body_of(answer), status=status_of(answer))
    return BatchItemResult(**answer.model_dump(), status=200)


def stream_line(item: PageResult | OCRResponse | OCRError) -> str:
    """One JSON line of ``/stream``: a ``page`` event, or the ``done`` event with the whole answer."""
    if isinstance(item, PageResult):
        return json.dumps({"event": "page", **item.model_dump()}) + "\n"
    body = body_of(item) if isinstance(item, OCRError) else item.model_dump()
    return json.dumps({"event": "done", **body}) + "\n"
