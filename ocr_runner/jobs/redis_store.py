"""The Redis job store: every replica sees every job, and a job outlives the replica running it.

The queue is a Redis stream read by one consumer group (redis-py, asyncio): each replica is a
consumer, so a job message goes to exactly one of them and stays *pending* for it until it is
acknowledged. The replica running a job renews its lease by re-claiming the message every
``lease_s / 3`` (which resets its idle time); a replica that dies stops renewing, and after
``lease_s`` another replica takes the message over (``XAUTOCLAIM``) and resumes the job from its
stored pages. Shutdown hands a job back at once: the message is acknowledged and a new one queued.

Keys (under ``prefix``): ``job:<id>`` the record (JSON), ``job:<id>:input`` the document,
``job:<id>:pages`` one field per page read, ``job:<id>:result``, ``job:<id>:stats`` (page reads
started, pages stored again), ``jobs:active`` (queued or running ids), ``jobs:queue`` (the stream).
State changes are Lua scripts, so a cancel on one replica and a finish on another cannot both win.
A finished job's record, result and stats expire after ``ttl_s``; its input and pages go at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

from ..errors import ErrorCode
from .base import Executor, JobStore, finished_fields
from .model import JobRecord, JobSpec, JobState

log = logging.getLogger("ocr_runner.jobs")
GROUP = "workers"
MAX_ATTEMPTS = 10  # a job that keeps killing its replicas fails instead of going round forever

_LUA_COMMON = """
local function finished(rec) return rec.state == 'completed' or rec.state == 'failed' or rec.state == 'cancelled' end
"""
BEGIN = _LUA_COMMON + """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local rec = cjson.decode(raw)
if finished(rec) then return false end
rec.state = 'running'; rec.attempts = (rec.attempts or 0) + 1; rec.worker = ARGV[2]; rec.message = ARGV[3]
rec.updated_at = tonumber(ARGV[1])
raw = cjson.encode(rec)
redis.call('SET', KEYS[1], raw)
return raw
"""
SAVE_PAGE = _LUA_COMMON + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if finished(rec) then return 0 end
if redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) == 0 then redis.call('HINCRBY', KEYS[3], 'stored_again', 1) end
rec.pages_done = redis.call('HLEN', KEYS[2]); rec.updated_at = tonumber(ARGV[3])
redis.call('SET', KEYS[1], cjson.encode(rec))
return 1
"""
FINISH = _LUA_COMMON + """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local rec = cjson.decode(raw)
if finished(rec) then return false end
for k, v in pairs(cjson.decode(ARGV[1])) do rec[k] = v end
local ttl = tonumber(ARGV[3])
raw = cjson.encode(rec)
redis.call('SET', KEYS[1], raw, 'EX', ttl)
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl) end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('EXPIRE', KEYS[5], ttl)
redis.call('SREM', KEYS[6], rec.job_id)
return raw
"""
HAND_BACK = _LUA_COMMON + """
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2]); redis.call('XDEL', KEYS[2], ARGV[2])
end
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local rec = cjson.decode(raw)
if finished(rec) then return false end
rec.state = 'queued'; rec.worker = cjson.null; rec.updated_at = tonumber(ARGV[4])
rec.message = redis.call('XADD', KEYS[2], '*', 'job', ARGV[3])
redis.call('SET', KEYS[1], cjson.encode(rec))
return 1
"""


class RedisJobStore(JobStore):
    kind = "redis"

    def __init__(self, url: str, *, prefix: str = "ocr:", lease_s: float = 30.0, **options: Any) -> None:
        super().__init__(**options)
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url, decode_responses=False, health_check_interval=30)
        self.prefix = prefix
        self.lease_s = lease_s
        self.stream = f"{prefix}jobs:queue"
        self.active_key = f"{prefix}jobs:active"
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._messages: dict[str, str] = {}  # job id -> the stream message this replica holds for it
        self._lost: set[str] = set()  # jobs another replica took over from this one
        self._loop_task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.workers)
        self._scripts = {name: self.redis.register_script(source) for name, source in
                         (("begin", BEGIN), ("save_page", SAVE_PAGE), ("finish", FINISH), ("hand_back", HAND_BACK))}

    def _key(self, job_id: str, part: str = "") -> str:
        return f"{self.prefix}job:{job_id}{':' + part if part else ''}"

    # -- JobStore --------------------------------------------------------------------------------

    async def start(self, execute: Executor) -> None:
        from redis.exceptions import ResponseError

        self._execute = execute
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._loop_task = asyncio.ensure_future(self._take_jobs())

    async def active_count(self) -> int:
        return int(await self.redis.scard(self.active_key))

    async def _create(self, record: JobRecord, spec: JobSpec) -> None:
        job_id = record.job_id
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(job_id, "input"), mapping={"meta": json.dumps(spec.meta()), "data": spec.data})
            pipe.set(self._key(job_id), json.dumps(record.to_json()))
            pipe.sadd(self.active_key, job_id)
            pipe.xadd(self.stream, {"job": job_id})
            await pipe.execute()

    async def _load(self, job_id: str, *, with_result: bool = False) -> JobRecord | None:
        raw = await self.redis.get(self._key(job_id))
        if raw is None:
            return None
        record = JobRecord.from_json(json.loads(raw))
        if with_result and record.state.value == "completed":
            result = await self.redis.get(self._key(job_id, "result"))
            record.result = json.loads(result) if result is not None else None
        return record

    async def _load_spec(self, job_id: str) -> JobSpec | None:
        stored = await self.redis.hgetall(self._key(job_id, "input"))
        if b"meta" not in stored or b"data" not in stored:
            return None
        return JobSpec.from_meta(json.loads(stored[b"meta"]), stored[b"data"])

    async def _load_pages(self, job_id: str) -> dict[int, dict[str, Any]]:
        stored = await self.redis.hgetall(self._key(job_id, "pages"))
        return {int(index): json.loads(page) for index, page in stored.items()}

    async def _begin(self, job_id: str) -> JobRecord | None:
        raw = await self._scripts["begin"](
            keys=[self._key(job_id)], args=[time.time(), self.consumer, self._messages.get(job_id, "")]
        )
        if not raw:
            return None
        record = JobRecord.from_json(json.loads(raw))
        if record.attempts > MAX_ATTEMPTS:
            self._notify(await self._finish(
                job_id, JobState.FAILED, error=f"interrupted: started {MAX_ATTEMPTS} times without finishing",
                error_code=ErrorCode.INTERRUPTED.value,
            ))
            return None
        return record

    async def _save_page(self, job_id: str, index: int, page: dict[str, Any]) -> bool:
        saved = await self._scripts["save_page"](
            keys=[self._key(job_id), self._key(job_id, "pages"), self._key(job_id, "stats")],
            args=[index, json.dumps(page), time.time()],
        )
        return bool(saved)

    async def _page_started(self, job_id: str, index: int) -> None:
        await self.redis.hincrby(self._key(job_id, "stats"), "started", 1)

    async def _finish(self, job_id: str, state: JobState, **fields: Any) -> JobRecord | None:
        result = fields.pop("result", None)
        record = await self._load(job_id)
        pages_total = record.pages_total if record is not None else 0
        raw = await self._scripts["finish"](
            keys=[self._key(job_id), self._key(job_id, "result"), self._key(job_id, "input"),
                  self._key(job_id, "pages"), self._key(job_id, "stats"), self.active_key],
            args=[json.dumps(finished_fields(state, fields, pages_total)),
                  json.dumps(result) if result is not None else "", max(1, int(self.ttl_s))],
        )
        if not raw:
            return None
        finished = JobRecord.from_json(json.loads(raw))
        finished.result = result
        return finished

    async def _hand_back(self, job_id: str) -> None:
        message = self._messages.pop(job_id, "")
        if job_id in self._lost:  # another replica runs it now: nothing to hand back
            self._lost.discard(job_id)
            return
        await self._scripts["hand_back"](keys=[self._key(job_id), self.stream],
                                         args=[GROUP, message, job_id, time.time()])

    async def _stop_workers(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)

    async def _closed(self) -> None:
        await asyncio.gather(*self._handlers, return_exceptions=True)
        with contextlib.suppress(Exception):  # best effort on the way out: leave the group tidy
            await self.redis.xgroup_delconsumer(self.stream, GROUP, self.consumer)
        await self.redis.aclose()

    async def stats(self, job_id: str) -> dict[str, int]:
        """Page reads started and pages stored again for a job (the fault test's figures)."""
        stored = await self.redis.hgetall(self._key(job_id, "stats"))
        return {key.decode(): int(value) for key, value in stored.items()}

    # -- taking jobs -----------------------------------------------------------------------------

    async def _take_jobs(self) -> None:
        last_reclaim = 0.0
        while not self.draining:
            await self._slots.acquire()
            try:
                message = None
                if time.monotonic() - last_reclaim > self.lease_s / 3:
                    last_reclaim = time.monotonic()
                    message = await self._reclaim()
                if message is None:
                    message = await self._read()
            except asyncio.CancelledError:
                self._slots.release()
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: keep trying, jobs wait in it
                self._slots.release()
                log.warning("job queue unavailable (%s); retrying", exc)
                await asyncio.sleep(1)
                continue
            if message is None:
                self._slots.release()
                continue
            task = asyncio.ensure_future(self._handle(*message))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _read(self) -> tuple[str, str] | None:
        answer = await self.redis.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=1, block=1000)
        for _, messages in answer or ():
            for message_id, fields in messages:
                return message_id.decode(), fields[b"job"].decode()
        return None

    async def _reclaim(self) -> tuple[str, str] | None:
        """A job whose replica stopped renewing its lease (it died), taken over by this one."""
        _, claimed, _ = await self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, min_idle_time=int(self.lease_s * 1000), start_id="0-0", count=1
        )
        for message_id, fields in claimed:
            if fields and b"job" in fields:
                log.info("taking over job %s from a replica that stopped", fields[b"job"].decode())
                return message_id.decode(), fields[b"job"].decode()
            await self.redis.xack(self.stream, GROUP, message_id)
        await self._forget_dead_consumers()
        return None

    async def _forget_dead_consumers(self) -> None:
        """Drop consumers (replicas gone long ago) that hold nothing, so the group does not grow forever."""
        for consumer in await self.redis.xinfo_consumers(self.stream, GROUP):
            if consumer["pending"] == 0 and consumer["idle"] > 20 * self.lease_s * 1000:
                await self.redis.xgroup_delconsumer(self.stream, GROUP, consumer["name"])

    async def _handle(self, message_id: str, job_id: str) -> None:
        self._messages[job_id] = message_id
        heartbeat = asyncio.ensure_future(self._renew(message_id, job_id))
        try:
            # Shielded: stopping the queue loop must not stop a job mid-page (close() decides when).
            settled = await asyncio.shield(asyncio.ensure_future(self._work(job_id)))
            if settled:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xack(self.stream, GROUP, message_id)
                    pipe.xdel(self.stream, message_id)
                    await pipe.execute()
        except Exception:  # noqa: BLE001 - the message stays pending and is reclaimed
            log.exception("job %s: could not settle its queue message", job_id)
        finally:
            heartbeat.cancel()
            self._messages.pop(job_id, None)
            self._slots.release()

    async def _renew(self, message_id: str, job_id: str) -> None:
        """Keep the lease while the job runs here; stop it when it was cancelled or taken over."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                pending = await self.redis.xpending_range(self.stream, GROUP, min=message_id, max=message_id, count=1)
                ours = bool(pending) and pending[0]["consumer"].decode() == self.consumer
                if ours:
                    await self.redis.xclaim(self.stream, GROUP, self.consumer, 0, [message_id], justid=True)
                record = await self._load(job_id)
            except Exception as exc:  # noqa: BLE001 - a missed renewal is retried at the next beat
                log.warning("job %s: lease renewal failed (%s)", job_id, exc)
                continue
            task = self._running.get(job_id)
            if task is not None and (not ours or record is None or record.finished):
                if not ours:
                    self._lost.add(job_id)
                task.cancel()  # cancelled by a client on another replica, or no longer ours
                return

