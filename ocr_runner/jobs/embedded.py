"""The embedded job store: one server, state journaled to a folder, no Redis needed.

Per job: ``<id>.json`` (the record, rewritten atomically on every change), ``<id>.spec.json`` and
``<id>.data`` (the input as submitted) and ``<id>.pages/<n>.json`` (each page as it finishes).
On start-up a queued or running job is queued again and resumes from its stored pages. The folder
is locked while a server uses it: two servers sharing one folder would run each other's jobs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..settings import SettingsError
from .base import Executor, JobStore, finished_fields
from .model import JobRecord, JobSpec, JobState


class EmbeddedJobStore(JobStore):
    kind = "embedded"

    def __init__(self, directory: Path, **options: Any) -> None:
        super().__init__(**options)
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock(directory)
        self._records: dict[str, JobRecord] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._recover()

    # -- JobStore --------------------------------------------------------------------------------

    async def start(self, execute: Executor) -> None:
        self._execute = execute
        self._workers = [asyncio.ensure_future(self._worker()) for _ in range(self.workers)]

    async def active_count(self) -> int:
        self._expire()
        return sum(1 for r in self._records.values() if not r.finished)

    async def _create(self, record: JobRecord, spec: JobSpec) -> None:
        _write_atomic(self.directory / f"{record.job_id}.data", spec.data)
        _write_atomic(self.directory / f"{record.job_id}.spec.json", json.dumps(spec.meta()).encode())
        self._records[record.job_id] = record
        self._save(record)
        self._queue.put_nowait(record.job_id)

    async def _load(self, job_id: str, *, with_result: bool = False) -> JobRecord | None:
        self._expire()
        return self._records.get(job_id)

    async def _load_spec(self, job_id: str) -> JobSpec | None:
        try:
            meta = json.loads((self.directory / f"{job_id}.spec.json").read_text())
            return JobSpec.from_meta(meta, (self.directory / f"{job_id}.data").read_bytes())
        except (OSError, ValueError, KeyError):
            return None

    async def _load_pages(self, job_id: str) -> dict[int, dict[str, Any]]:
        pages: dict[int, dict[str, Any]] = {}
        folder = self._pages_dir(job_id)
        for path in folder.glob("*.json") if folder.exists() else ():
            try:
                pages[int(path.stem)] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a page cut short by a crash is read again
        return pages

    async def _begin(self, job_id: str) -> JobRecord | None:
        record = self._records.get(job_id)
        if record is None or record.finished:
            return None
        record.state = JobState.RUNNING
        record.attempts += 1
        self._touch(record)
        return record

    async def _save_page(self, job_id: str, index: int, page: dict[str, Any]) -> bool:
        record = self._records.get(job_id)
        if record is None or record.finished:
            return False
        folder = self._pages_dir(job_id)
        folder.mkdir(exist_ok=True)
        _write_atomic(folder / f"{index}.json", json.dumps(page).encode())
        record.pages_done = sum(1 for _ in folder.glob("*.json"))
        self._touch(record)
        return True

    async def _finish(self, job_id: str, state: JobState, **fields: Any) -> JobRecord | None:
        record = self._records.get(job_id)
        if record is None or record.finished:
            return None
        for key, value in finished_fields(state, fields, record.pages_total).items():
            setattr(record, key, JobState(value) if key == "state" else value)
        self._save(record)
        self._drop_input(job_id)
        return record

    async def _hand_back(self, job_id: str) -> None:
        record = self._records.get(job_id)
        if record is not None and not record.finished:
            record.state = JobState.QUEUED  # resumed at the next start, from its stored pages
            self._touch(record)
            if not self.draining:
                self._queue.put_nowait(job_id)

    async def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _closed(self) -> None:
        self._lock_file.close()

    # -- internals -------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            job_id = await self._queue.get()
            if self.draining:
                return
            # Shielded: stopping the workers must not cancel a job mid-page (close() decides when).
            await asyncio.shield(asyncio.ensure_future(self._work(job_id)))

    def _pages_dir(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.pages"

    def _touch(self, record: JobRecord) -> None:
        record.updated_at = time.time()
        self._save(record)

    def _save(self, record: JobRecord) -> None:
        _write_atomic(self.directory / f"{record.job_id}.json", json.dumps(record.to_json()).encode())

    def _drop_input(self, job_id: str) -> None:
        for suffix in (".data", ".spec.json"):
            (self.directory / f"{job_id}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(self._pages_dir(job_id), ignore_errors=True)

    def _recover(self) -> None:
        unfinished = []
        for path in self.directory.glob("*.json"):
            if path.name.endswith(".spec.json"):
                continue
            try:
                record = JobRecord.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError, KeyError):
                continue
            self._records[record.job_id] = record
            if not record.finished:
                unfinished.append(record)
        for record in sorted(unfinished, key=lambda r: r.created_at):
            record.state = JobState.QUEUED
            self._save(record)
            self._queue.put_nowait(record.job_id)
        self._expire()

    def _expire(self) -> None:
        cutoff = time.time() - self.ttl_s
        for job_id, record in list(self._records.items()):
            if record.finished and record.updated_at < cutoff:
                del self._records[job_id]
                (self.directory / f"{job_id}.json").unlink(missing_ok=True)
                self._drop_input(job_id)


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _lock(directory: Path) -> Any:
    """An exclusive lock on the folder for this server's lifetime (released when the process ends)."""
    import fcntl

    handle = open(directory / ".lock", "a+")  # noqa: SIM115 - held until close()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SettingsError(
            f"invalid configuration: JOBS_DIR {directory} is in use by another server; give each server its own "
            "JOBS_DIR, or set REDIS_URL so that servers share their jobs"
        ) from None
    return handle
