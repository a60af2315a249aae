"""What a job is, whichever store keeps it: its record, its input, and each page read so far."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}


@dataclass
class JobRecord:
    """A job's state. ``pages_done`` is the number of distinct pages stored, so a page read twice
    (by a replica that died and the one that took over) is counted once."""

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
    owner: str | None = None  # the API key id that submitted it (None when keys are off)
    callback_url: str | None = None
    attempts: int = 0  # times a worker started it (a restart or a reclaim adds one)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}  # older journals had more
        return cls(**{**known, "state": JobState(data["state"])})


@dataclass(frozen=True)
class JobSpec:
    """A job's input as submitted: enough for any replica to prepare the document again and resume it."""

    task: str
    options: dict[str, Any]
    field: str
    data: bytes

    def meta(self) -> dict[str, Any]:
        return {"task": self.task, "options": self.options, "field": self.field}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], data: bytes) -> JobSpec:
        return cls(task=meta["task"], options=meta["options"], field=meta["field"], data=data)
