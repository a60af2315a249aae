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
        assert failed.error_code == "engine_failure" and "engine failed" in failed.error

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
    # The journal as a crashed server leaves it: one job running, one queued, one done.
    for job_id, state in (("a1", "running"), ("b2", "queued"), ("c3", "completed")):
        record = {"job_id": job_id, "task": "ocr", "pages_total": 3, "state": state, "pages_done": 1,
                  "created_at": 1e10, "updated_at": 1e10, "error": None, "error_code": None,
                  "error_status": None, "result": {"success": True} if state == "completed" else None}
        (tmp_path / f"{job_id}.json").write_text(json.dumps(record))
    store = JobStore(tmp_path)
    for job_id in ("a1", "b2"):
        recovered = store.get(job_id)
        assert recovered.state is JobState.FAILED and recovered.error_code == "interrupted"
        assert "restarted" in recovered.error
        assert json.loads((tmp_path / f"{job_id}.json").read_text())["state"] == "failed"
    assert store.get("c3").state is JobState.COMPLETED


def test_shutdown_mid_job_is_reported_as_interrupted(tmp_path):
    async def scenario():
        store = JobStore(tmp_path)
        record = store.submit("markdown", 5, lambda progress: asyncio.sleep(60))
        await asyncio.sleep(0.01)
        return record.job_id

    job_id = asyncio.run(scenario())  # the loop cancels the running job as it closes
    assert JobStore(tmp_path).get(job_id).error_code == "interrupted"


def test_cancel_before_start_leaves_no_task(tmp_path):
    async def scenario():
        store = JobStore(tmp_path)
        record = store.submit("ocr", 1, lambda progress: asyncio.sleep(60))
        store.cancel(record.job_id)  # before the task ever ran
        assert store._tasks == {}
        await asyncio.sleep(0.01)
        assert store.get(record.job_id).state is JobState.CANCELLED

    asyncio.run(scenario())


def test_unknown_and_expired_jobs_are_404(tmp_path):
    async def scenario():
        store = JobStore(tmp_path, ttl_s=0.3)

        async def runner(progress):
            return {"ok": True}

        record = store.submit("ocr", 1, runner)
        await until(lambda: record.state is JobState.COMPLETED)
        await asyncio.sleep(0.4)
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


def test_failures_are_reported_once_with_their_code(tmp_path):
    failures = []

    async def scenario():
        store = JobStore(tmp_path, on_failed=failures.append)

        async def failing(progress):
            raise EngineItemFailed("the engine failed on this image")

        async def succeeding(progress):
            return {"success": True}

        failed = store.submit("ocr", 1, failing)
        done = store.submit("ocr", 1, succeeding)
        await until(lambda: store.get(failed.job_id).state is JobState.FAILED)
        await until(lambda: store.get(done.job_id).state is JobState.COMPLETED)
        cancelled = store.submit("ocr", 1, lambda progress: asyncio.sleep(60))
        store.cancel(cancelled.job_id)
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert failures == ["engine_failure"]
