"""The job stores (embedded and Redis, one set of tests): states, progress, cancellation, owners,
resuming after a restart or a dead replica from the pages already read, expiry."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from ocr_runner.errors import EngineItemFailed, Overloaded
from ocr_runner.jobs import JobSpec, JobState
from ocr_runner.jobs.base import JobConflict, JobNotFound
from ocr_runner.jobs.embedded import EmbeddedJobStore
from ocr_runner.settings import SettingsError
from tests.helpers import redis_test_url

pytestmark = pytest.mark.unit
SPEC = JobSpec(task="ocr", options={}, field="image_base64", data=b"document bytes")


async def until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


class Reader:
    """An executor that reads a job's missing pages one by one, each waiting for its gate."""

    def __init__(self, gated: bool = False) -> None:
        self.read: list[int] = []
        self.seen_done: list[set[int]] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.gated = gated

    def open(self, *indices: int) -> None:
        for index in indices:
            self.gates.setdefault(index, asyncio.Event()).set()

    async def __call__(self, run):
        self.seen_done.append(set(run.done))
        pages = dict(run.done)
        for index in range(run.record.pages_total):
            if index in pages:
                continue
            if run.stopping():
                from ocr_runner.errors import Interrupted

                raise Interrupted("stopping")
            await run.page_started(index)
            if self.gated:
                await self.gates.setdefault(index, asyncio.Event()).wait()
            self.read.append(index)
            pages[index] = {"text": f"page {index}"}
            await run.save_page(index, pages[index])
        return {"success": True, "pages": [pages[i]["text"] for i in range(run.record.pages_total)]}


@pytest.fixture(params=["embedded", "redis"])
def make_store(request, tmp_path):
    """A factory of stores of one kind sharing one place (a folder, or a Redis key prefix)."""
    made = []
    if request.param == "embedded":
        def factory(**options):
            store = EmbeddedJobStore(tmp_path, **options)
            made.append(store)
            return store
    else:
        url = redis_test_url()
        prefix = f"test-{uuid.uuid4().hex[:8]}:"

        def factory(**options):
            from ocr_runner.jobs.redis_store import RedisJobStore

            store = RedisJobStore(url, prefix=prefix, **{"lease_s": 3.0, **options})
            made.append(store)
            return store
    factory.kind = request.param
    factory.place = tmp_path if request.param == "embedded" else prefix
    yield factory


def test_completes_with_progress_and_pages_stored(make_store):
    async def scenario():
        store = make_store()
        reader = Reader(gated=True)
        await store.start(reader)
        record = await store.submit(SPEC, 2)
        reader.open(0)
        await until(lambda: _pages_done(store, record.job_id, 1))
        assert (await store.get(record.job_id)).state is JobState.RUNNING
        reader.open(1)
        await until(lambda: _state(store, record.job_id, JobState.COMPLETED))
        done = await store.get(record.job_id, with_result=True)
        assert done.result == {"success": True, "pages": ["page 0", "page 1"]}
        assert done.pages_done == 2
        await store.close()

    asyncio.run(scenario())


def test_failure_keeps_the_reason_and_is_reported_once(make_store):
    failures, finished = [], []

    async def scenario():
        store = make_store(on_failed=failures.append, on_finished=finished.append)

        async def failing(run):
            raise EngineItemFailed("the engine failed on this image")

        await store.start(failing)
        record = await store.submit(SPEC, 1)
        await until(lambda: _state(store, record.job_id, JobState.FAILED))
        failed = await store.get(record.job_id)
        assert failed.error_code == "engine_failure" and "engine failed" in failed.error
        await store.close()

    asyncio.run(scenario())
    assert failures == ["engine_failure"] and [r.state for r in finished] == [JobState.FAILED]


def test_cancel_stops_the_work(make_store):
    async def scenario():
        store = make_store()
        reader = Reader(gated=True)
        await store.start(reader)
        record = await store.submit(SPEC, 3)
        await until(lambda: _state(store, record.job_id, JobState.RUNNING))
        assert (await store.cancel(record.job_id)).state is JobState.CANCELLED
        with pytest.raises(JobConflict):
            await store.cancel(record.job_id)
        reader.open(0, 1, 2)
        await asyncio.sleep(0.3)
        assert reader.read == [] and (await store.get(record.job_id)).state is JobState.CANCELLED
        await store.close()

    asyncio.run(scenario())


def test_another_owner_gets_404(make_store):
    async def scenario():
        store = make_store()
        await store.start(Reader())
        record = await store.submit(SPEC, 1, owner="key-a")
        assert (await store.get(record.job_id, "key-a")).job_id == record.job_id
        for other in ("key-b", None):
            with pytest.raises(JobNotFound):
                await store.get(record.job_id, other)
            with pytest.raises(JobNotFound):
                await store.cancel(record.job_id, other)
        await store.close()

    asyncio.run(scenario())


def test_shutdown_leaves_the_job_resumable_from_the_pages_read(make_store):
    """Pages in flight finish within the grace; the job resumes at the next start with those pages."""

    async def scenario():
        first = make_store()
        reader = Reader(gated=True)
        await first.start(reader)
        record = await first.submit(SPEC, 4)
        reader.open(0, 1)
        await until(lambda: _pages_done(first, record.job_id, 2))
        closing = asyncio.ensure_future(first.close(grace_s=5))
        await asyncio.sleep(0.1)
        reader.open(2)  # in flight at SIGTERM: finishes and is stored; page 3 is never started
        await closing
        assert reader.read == [0, 1, 2]
        assert (await _reopen(make_store).get(record.job_id)).state is JobState.QUEUED

        second = make_store()
        resumed = Reader()
        await second.start(resumed)
        await until(lambda: _state(second, record.job_id, JobState.COMPLETED))
        assert resumed.seen_done == [{0, 1, 2}] and resumed.read == [3]
        done = await second.get(record.job_id, with_result=True)
        assert done.result["pages"] == ["page 0", "page 1", "page 2", "page 3"] and done.attempts == 2
        await second.close()

    asyncio.run(scenario())


def test_a_crashed_server_s_jobs_resume_not_fail(tmp_path):
    # The journal as a server killed with -9 leaves it: one job running with a page read, one queued, one done.
    for job_id, state in (("a1", "running"), ("b2", "queued"), ("c3", "completed")):
        record = {"job_id": job_id, "task": "ocr", "pages_total": 2, "state": state, "pages_done": int(job_id == "a1"),
                  "created_at": 1e10, "updated_at": 1e10, "result": {"success": True} if state == "completed" else None}
        (tmp_path / f"{job_id}.json").write_text(json.dumps(record))
        (tmp_path / f"{job_id}.data").write_bytes(b"x")
        (tmp_path / f"{job_id}.spec.json").write_text(json.dumps(SPEC.meta()))
    (tmp_path / "a1.pages").mkdir()
    (tmp_path / "a1.pages" / "0.json").write_text(json.dumps({"text": "page 0"}))
    (tmp_path / "a1.pages" / "1.json.tmp").write_text('{"te')  # a page cut short by the crash

    async def scenario():
        store = EmbeddedJobStore(tmp_path)
        reader = Reader()
        await store.start(reader)
        for job_id in ("a1", "b2"):
            await until(lambda job_id=job_id: _state(store, job_id, JobState.COMPLETED))
        assert sorted(reader.read) == [0, 1, 1]  # a1 read only its missing page, b2 both
        assert (await store.get("c3")).state is JobState.COMPLETED
        await store.close()

    asyncio.run(scenario())


def test_one_folder_one_server(tmp_path):
    first = EmbeddedJobStore(tmp_path)
    with pytest.raises(SettingsError, match="REDIS_URL"):
        EmbeddedJobStore(tmp_path)
    asyncio.run(first.close())
    EmbeddedJobStore(tmp_path)


def test_a_dead_replica_s_job_is_taken_over_and_resumed():
    """Redis: a replica that stops renewing its lease (it died) loses its job to another, which
    resumes from the stored pages."""
    url = redis_test_url()
    from ocr_runner.jobs.redis_store import RedisJobStore

    async def scenario():
        prefix = f"test-{uuid.uuid4().hex[:8]}:"
        dying = RedisJobStore(url, prefix=prefix, lease_s=3.0)
        reader = Reader(gated=True)
        await dying.start(reader)
        record = await dying.submit(SPEC, 3)
        reader.open(0)
        await until(lambda: _pages_done(dying, record.job_id, 1))
        # Death: every task of this replica stops at once; nothing is handed back or acknowledged.
        for task in [dying._loop_task, *dying._handlers]:
            task.cancel()
        dying._hand_back = _nothing
        await asyncio.gather(dying._loop_task, *dying._handlers, return_exceptions=True)

        survivor = RedisJobStore(url, prefix=prefix, lease_s=3.0)
        resumed = Reader()
        await survivor.start(resumed)
        await until(lambda: _state(survivor, record.job_id, JobState.COMPLETED), timeout=20)
        assert resumed.seen_done == [{0}] and resumed.read == [1, 2]
        done = await survivor.get(record.job_id, with_result=True)
        assert done.result["pages"] == ["page 0", "page 1", "page 2"] and done.attempts == 2
        stats = await survivor.stats(record.job_id)
        assert stats["started"] == 4 and stats.get("stored_again", 0) == 0  # page 1 started twice, stored once
        await survivor.close()
        await dying.redis.aclose()

    asyncio.run(scenario())


def test_unknown_and_expired_jobs_are_404(make_store):
    async def scenario():
        store = make_store(ttl_s=1.0)
        await store.start(Reader())
        record = await store.submit(SPEC, 1)
        await until(lambda: _state(store, record.job_id, JobState.COMPLETED))
        await asyncio.sleep(1.6 if make_store.kind == "embedded" else 2.2)
        with pytest.raises(JobNotFound):
            await store.get(record.job_id)
        with pytest.raises(JobNotFound):
            await store.get("../../etc/passwd")
        await store.close()

    asyncio.run(scenario())


def test_active_job_limit_is_503(make_store):
    async def scenario():
        store = make_store(max_active=1)
        await store.start(Reader(gated=True))
        await store.submit(SPEC, 1)
        with pytest.raises(Overloaded):
            await store.submit(SPEC, 1)
        await store.close()

    asyncio.run(scenario())


async def _nothing(*args, **kwargs):
    return None


async def _state(store, job_id, state) -> bool:
    return (await store.get(job_id)).state is state


async def _pages_done(store, job_id, count) -> bool:
    return (await store.get(job_id)).pages_done >= count


def _reopen(make_store):
    """The store's place read back without taking jobs (a status check between two servers)."""

    class Peek:
        async def get(self, job_id):
            if make_store.kind == "embedded":
                from ocr_runner.jobs.model import JobRecord

                return JobRecord.from_json(json.loads((make_store.place / f"{job_id}.json").read_text()))
            import redis

            url = redis_test_url()
            from ocr_runner.jobs.model import JobRecord

            return JobRecord.from_json(json.loads(redis.Redis.from_url(url).get(f"{make_store.place}job:{job_id}")))

    return Peek()
