"""The job-store interface, and the one way a job runs whichever store keeps it.

A store keeps records, each job's input and the pages read so far, and a queue of jobs to run.
Its workers take a job, load what was read already and hand the rest to the executor (the
serving layer: prepare the document, read the missing pages). Every page is stored as it
finishes, before it counts as done, so a job stopped at any moment resumes from its stored
pages: a page may be read twice (it was in flight when its reader died), never lost, and never
counted twice (pages are stored by index).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ErrorCode, Interrupted, JobConflict, JobNotFound, OCRError, Overloaded
from .model import JobRecord, JobSpec, JobState

log = logging.getLogger("ocr_runner.jobs")
FailureCallback = Callable[[ErrorCode], None]  # the error code of a job that failed
FinishedCallback = Callable[[JobRecord], None]  # a job this store finished (completed, failed or cancelled)


class JobGone(Exception):
    """The job is no longer this worker's to run (cancelled, or finished by another replica)."""


@dataclass
class JobRun:
    """One attempt at a job, as the executor sees it."""

    record: JobRecord
    spec: JobSpec
    done: dict[int, dict[str, Any]]  # page index -> the page as stored
    store: JobStore

    async def save_page(self, index: int, page: dict[str, Any]) -> None:
        """Store a finished page; raises ``JobGone`` when the job was cancelled meanwhile."""
        if not await self.store._save_page(self.record.job_id, index, page):
            raise JobGone(self.record.job_id)

    async def page_started(self, index: int) -> None:
        await self.store._page_started(self.record.job_id, index)

    def stopping(self) -> bool:
        """True once the server is shutting down: start no more pages."""
        return self.store.draining


Executor = Callable[[JobRun], Awaitable[dict[str, Any]]]


class JobStore(abc.ABC):
    """Records, inputs, pages and the queue; subclasses say where they live."""

    kind: str

    def __init__(
        self, *, ttl_s: float = 3600, max_active: int = 16, workers: int = 2,
        on_failed: FailureCallback | None = None, on_finished: FinishedCallback | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_active = max_active
        self.workers = workers
        self._on_failed = on_failed
        self._on_finished = on_finished
        self._execute: Executor | None = None
        self.draining = False
        self._running: dict[str, asyncio.Task[Any]] = {}  # job id -> the task running it here

    # -- the interface ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def start(self, execute: Executor) -> None:
        """Begin running queued jobs (resuming those a previous server left unfinished)."""

    @abc.abstractmethod
    async def active_count(self) -> int: ...

    @abc.abstractmethod
    async def _create(self, record: JobRecord, spec: JobSpec) -> None:
        """Store a new job and queue it."""

    @abc.abstractmethod
    async def _load(self, job_id: str, *, with_result: bool = False) -> JobRecord | None: ...

    @abc.abstractmethod
    async def _load_spec(self, job_id: str) -> JobSpec | None: ...

    @abc.abstractmethod
    async def _load_pages(self, job_id: str) -> dict[int, dict[str, Any]]: ...

    @abc.abstractmethod
    async def _begin(self, job_id: str) -> JobRecord | None:
        """Mark the job running (one more attempt); None when it is finished or unknown."""

    @abc.abstractmethod
    async def _save_page(self, job_id: str, index: int, page: dict[str, Any]) -> bool:
        """Store a page and update progress; False when the job is no longer active."""

    async def _page_started(self, job_id: str, index: int) -> None:  # noqa: B027 - optional
        """Count a page read starting (the fault test's 'pages read twice')."""

    @abc.abstractmethod
    async def _finish(self, job_id: str, state: JobState, **fields: Any) -> JobRecord | None:
        """Finish the job unless it already is; the finished record, or None when it already was."""

    @abc.abstractmethod
    async def _hand_back(self, job_id: str) -> None:
        """Put an unfinished job back in the queue, with its pages kept, for any worker to resume."""

    @abc.abstractmethod
    async def _stop_workers(self) -> None:
        """Stop taking jobs from the queue."""

    # -- what routes call ------------------------------------------------------------------------

    async def ensure_capacity(self) -> None:
        """Raise ``Overloaded`` (503) when ``max_active`` jobs are already queued or running."""
        active = await self.active_count()
        if active >= self.max_active:
            raise Overloaded(f"{active} jobs are already queued or running; retry later", retry_after_s=30)

    async def submit(
        self, spec: JobSpec, pages_total: int, *, owner: str | None = None, callback_url: str | None = None
    ) -> JobRecord:
        if self.draining:
            raise Overloaded("the server is shutting down; submit the job to another replica", retry_after_s=5)
        await self.ensure_capacity()
        record = JobRecord(job_id=uuid.uuid4().hex, task=spec.task, pages_total=pages_total, owner=owner,
                           callback_url=callback_url)
        await self._create(record, spec)
        return record

    async def get(self, job_id: str, owner: str | None = None, *, with_result: bool = False) -> JobRecord:
        """The job, if it exists and belongs to ``owner`` (another key's job is as unknown as a missing one)."""
        record = await self._load(job_id, with_result=with_result) if _valid_id(job_id) else None
        if record is None or (record.owner is not None and record.owner != owner):
            raise JobNotFound(f"no job {job_id!r} (unknown, or expired after {int(self.ttl_s)} s)", field="job_id")
        return record

    async def cancel(self, job_id: str, owner: str | None = None) -> JobRecord:
        record = await self.get(job_id, owner)
        if record.finished:
            raise JobConflict(f"job {job_id} already {record.state.value}", field="job_id")
        finished = await self._finish(job_id, JobState.CANCELLED, error="cancelled by the client",
                                      error_code=ErrorCode.CANCELLED.value)
        if finished is None:  # it finished meanwhile
            record = await self.get(job_id, owner)
            raise JobConflict(f"job {job_id} already {record.state.value}", field="job_id")
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()
        return finished

    async def close(self, grace_s: float = 0.0) -> None:
        """Shutdown: take no more jobs, let pages in flight finish for up to ``grace_s``, hand the rest back."""
        self.draining = True
        await self._stop_workers()
        tasks = list(self._running.values())
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._closed()

    async def _closed(self) -> None:  # noqa: B027 - optional
        """Release what the store holds (connections, locks)."""

    # -- running a job ---------------------------------------------------------------------------

    async def _work(self, job_id: str) -> bool:
        """Run one job here. True when the job is settled (finished, cancelled, unknown); False when
        it was handed back unfinished."""
        assert self._execute is not None
        record = await self._begin(job_id)
        if record is None:
            return True
        self._running[job_id] = asyncio.current_task()  # type: ignore[assignment]
        try:
            return await self._attempt(record)
        finally:
            self._running.pop(job_id, None)

    async def _attempt(self, record: JobRecord) -> bool:
        assert self._execute is not None
        job_id = record.job_id
        try:
            spec = await self._load_spec(job_id)
            if spec is None:
                raise OCRError("the job's input is missing")
            run = JobRun(record, spec, await self._load_pages(job_id), self)
            result = await self._execute(run)
        except JobGone:
            return True
        except (asyncio.CancelledError, Interrupted):
            current = await self._load(job_id)
            if current is None or current.finished:
                return True  # cancelled by a client
            await self._hand_back(job_id)
            log.info("job %s handed back with %d of %d pages read", job_id, current.pages_done, current.pages_total)
            return False
        except OCRError as exc:
            self._notify(await self._finish(job_id, JobState.FAILED, error=exc.message, error_code=exc.code.value))
            return True
        except Exception:  # noqa: BLE001 - a job must end in a state, never vanish
            log.exception("job %s failed", job_id)
            self._notify(await self._finish(job_id, JobState.FAILED, error="internal error",
                                            error_code=ErrorCode.INTERNAL_ERROR.value))
            return True
        self._notify(await self._finish(job_id, JobState.COMPLETED, result=result))
        return True

    def _notify(self, record: JobRecord | None) -> None:
        if record is None:
            return
        if record.state is JobState.FAILED and self._on_failed is not None:
            # Nobody is answered an error when a job fails in the background: count it here.
            self._on_failed(ErrorCode(record.error_code or ErrorCode.INTERNAL_ERROR))
        if self._on_finished is not None:
            try:
                self._on_finished(record)
            except Exception:  # noqa: BLE001 - a notification must not undo the job
                log.exception("job %s: finished callback failed", record.job_id)


def finished_fields(state: JobState, fields: dict[str, Any], pages_total: int) -> dict[str, Any]:
    """The record fields a finish sets."""
    update = {"state": state.value, "updated_at": time.time(), **fields}
    if state is JobState.COMPLETED:
        update["pages_done"] = pages_total
    return update


def _valid_id(job_id: str) -> bool:
    return 0 < len(job_id) <= 64 and job_id.isalnum()
