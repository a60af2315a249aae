"""Asynchronous jobs for long documents: submit, poll progress, fetch the result, cancel.

State lives in the API process (asyncio tasks) and is journaled as one JSON file per
job in ``jobs_dir``, rewritten atomically on every change. On start-up, a job the
journal shows as queued or running was interrupted by a restart: it is marked failed
with that reason, never silently dropped. Finished jobs are kept for ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import ErrorCode, JobConflict, JobNotFound, OCRError, Overloaded

log = logging.getLogger(__name__)
ProgressCallback = Callable[[int, int], None]
Runner = Callable[[ProgressCallback], Awaitable[Any]]
FailureCallback = Callable[[ErrorCode], None]  # the error code of a job that failed


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
_INTERRUPTED = {
    "error": "interrupted: the server restarted before this job finished; submit it again",
    "error_code": ErrorCode.INTERRUPTED,
}


@dataclass
class JobRecord:
    job_id: str
    task: str
    pages_total: int
    state: JobState = JobState.QUEUED
    pages_done: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    error: str | None = None
    error_code: str | None = None
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}  # older journals had more
        return cls(**{**known, "state": JobState(data["state"])})


class JobStore:
    def __init__(
        self, directory: Path, *, ttl_s: float = 3600, max_active: int = 16,
        on_failed: FailureCallback | None = None,
    ) -> None:
        self.directory = directory
        self.ttl_s = ttl_s
        self.max_active = max_active
        self._on_failed = on_failed
        self._records: dict[str, JobRecord] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- public ---------------------------------------------------------------------------------

    def ensure_capacity(self) -> None:
        """Raise ``Overloaded`` (503) when ``max_active`` jobs are already queued or running."""
        self._expire()
        active = sum(1 for r in self._records.values() if r.state not in FINISHED)
        if active >= self.max_active:
            raise Overloaded(f"{active} jobs are already queued or running; retry later", retry_after_s=30)

    def submit(self, task: str, pages_total: int, runner: Runner) -> JobRecord:
        self.ensure_capacity()
        record = JobRecord(job_id=uuid.uuid4().hex, task=task, pages_total=pages_total)
        self._records[record.job_id] = record
        self._save(record)
        self._tasks[record.job_id] = asyncio.ensure_future(self._run(record, runner))
        return record

    def get(self, job_id: str) -> JobRecord:
        self._expire()
        record = self._records.get(job_id) or self._load(job_id)
        if record is None:
            raise JobNotFound(f"no job {job_id!r} (unknown, or expired after {int(self.ttl_s)} s)", field="job_id")
        return record

    def cancel(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record.state in FINISHED:
            raise JobConflict(f"job {job_id} already {record.state.value}", field="job_id")
        self._finish(record, JobState.CANCELLED, error="cancelled by the client", error_code=ErrorCode.CANCELLED)
        task = self._tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
        return record

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- internals ------------------------------------------------------------------------------

    async def _run(self, record: JobRecord, runner: Runner) -> None:
        def progress(done: int, total: int) -> None:
            if record.state is JobState.RUNNING:
                record.pages_done, record.pages_total = done, total
                self._touch(record)

        record.state = JobState.RUNNING
        self._touch(record)
        try:
            response = await runner(progress)
        except asyncio.CancelledError:
            # cancel() finishes the record first; any other cancellation is the server shutting down.
            if record.state not in FINISHED:
                self._finish(record, JobState.FAILED, **_INTERRUPTED)
            return
        except OCRError as exc:
            self._finish(record, JobState.FAILED, error=exc.message, error_code=exc.code)
            return
        except Exception:  # noqa: BLE001 - a job must end in a state, never vanish
            log.exception("job %s failed", record.job_id)
            self._finish(record, JobState.FAILED, error="internal error", error_code=ErrorCode.INTERNAL_ERROR)
            return
        finally:
            self._tasks.pop(record.job_id, None)
        if record.state is JobState.RUNNING:
            record.result = response.model_dump() if hasattr(response, "model_dump") else response
            record.pages_done = record.pages_total
            self._finish(record, JobState.COMPLETED)

    def _finish(self, record: JobRecord, state: JobState, **error: Any) -> None:
        record.state = state
        for key, value in error.items():
            setattr(record, key, value.value if isinstance(value, ErrorCode) else value)
        self._touch(record)
        if state is JobState.FAILED and self._on_failed is not None:
            # Nobody is answered an error when a job fails in the background: count it here.
            self._on_failed(ErrorCode(record.error_code or ErrorCode.INTERNAL_ERROR))

    def _touch(self, record: JobRecord) -> None:
        record.updated_at = time.time()
        self._save(record)

    def _path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.json"

    def _save(self, record: JobRecord) -> None:
        path = self._path(record.job_id)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record.to_json()))
        os.replace(temporary, path)

    def _load(self, job_id: str) -> JobRecord | None:
        if not job_id.isalnum():
            return None
        try:
            return JobRecord.from_json(json.loads(self._path(job_id).read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _recover(self) -> None:
        for path in self.directory.glob("*.json"):
            record = self._load(path.stem)
            if record is None:
                continue
            if record.state not in FINISHED:
                self._finish(record, JobState.FAILED, **_INTERRUPTED)
            self._records[record.job_id] = record
        self._expire()

    def _expire(self) -> None:
        cutoff = time.time() - self.ttl_s
        for job_id, record in list(self._records.items()):
            if record.state in FINISHED and record.updated_at < cutoff:
                del self._records[job_id]
                self._path(job_id).unlink(missing_ok=True)
