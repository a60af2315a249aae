"""The job store: states, progress, cancellation, restart recovery, expiry."""

import asyncio
import json

import pytest

from ocr_runner.errors import EngineItemFailed, Overloaded
from ocr_runner.jobs import JobConflict, JobNotFound, JobState, JobStore

pytestmark = pytest.mark.unit


async def until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


def test_completes_with_progress_and_journals(tmp_path):
    async def scenario():
        store = JobStore(tmp_path)
        gate = asyncio.Event()

        async def runner(progress):
            progress(1, 2)
            await gate.wait()
            progress(2, 2)
            return {"success": True, "result": "done"}

        record = store.submit("ocr", 2, runner)
        await until(lambda: store.get(record.job_id).pages_done == 1)
        assert store.get(record.job_id).state is JobState.RUNNING
        on_disk = json.loads((tmp_path / f"{record.job_id}.json").read_text())
        assert on_disk["state"] == "running" and on_disk["pages_done"] == 1
        gate.set()
        await until(lambda: store.get(record.job_id).state is JobState.COMPLETED)
        assert store.get(record.job_id).result == {"success": True, "result": "done"}

    asyncio.run(scenario())


def test_failure_keeps_the_reason_and_status(tmp_path):
    async def scenario():
        store = JobStore(tmp_path)

        async def runner(progress):
            raise EngineItemFailed("the engine failed on this image")

        record = store.submit("ocr", 1, runner)
        await until(lambda: store.get(record.job_id).state is JobState.FAILED)
        failed = store.get(record.job_id)
        assert failed.error_status == 500 and "engine failed" in failed.error

    asyncio.run(scenario())


def test_cancel_stops_the_work(tmp_path):
    async def scenario():
        store = JobStore(tmp_path)
        stopped = asyncio.Event()

        async def runner(progress):
            try:
                await asyncio.sleep(60)
            finally:
                stopped.set()

        record = store.submit("ocr", 3, runner)
        await asyncio.sleep(0.01)
        assert store.cancel(record.job_id).state is JobState.CANCELLED
        await asyncio.wait_for(stopped.wait(), 5)
        with pytest.raises(JobConflict):
            store.cancel(record.job_id)

    asyncio.run(scenario())


def test_restart_marks_unfinished_jobs_failed_never_lost(tmp_path):
    async def scenario():
        store = JobStore(tmp_path)
        record = store.submit("markdown", 5, lambda progress: asyncio.sleep(60))
        await asyncio.sleep(0.01)
        return record.job_id

    job_id = asyncio.run(scenario())  # the loop ends with the job still running: a crash
    recovered = JobStore(tmp_path).get(job_id)
    assert recovered.state is JobState.FAILED and recovered.error_code == "interrupted"
    assert "restarted" in recovered.error


def test_unknown_and_expired_jobs_are_404(tmp_path):
    async def scenario():
        store = JobStore(tmp_path, ttl_s=0.05)

        async def runner(progress):
            return {"ok": True}

        record = store.submit("ocr", 1, runner)
        await until(lambda: store.get(record.job_id).state is JobState.COMPLETED)
        await asyncio.sleep(0.1)
        with pytest.raises(JobNotFound):
            store.get(record.job_id)
        with pytest.raises(JobNotFound):
            store.get("../../etc/passwd")

    asyncio.run(scenario())


def test_active_job_limit_is_503(tmp_path):
    async def scenario():
        store = JobStore(tmp_path, max_active=1)
        store.submit("ocr", 1, lambda progress: asyncio.sleep(60))
        with pytest.raises(Overloaded):
            store.submit("ocr", 1, lambda progress: asyncio.sleep(60))
        await store.close()

    asyncio.run(scenario())
