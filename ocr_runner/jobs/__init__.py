"""Asynchronous jobs for long documents: submit, poll progress, fetch the result, cancel.

Two stores behind one interface (``base.JobStore``): the embedded one (a folder, one server;
the default, no Redis needed) and the Redis one (``REDIS_URL``: every replica answers for every
job, and a replica that dies has its jobs resumed by another). Either way a job resumes from
the pages already read after a restart instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..settings import Settings
from .base import Executor, JobGone, JobRun, JobStore
from .model import FINISHED, JobRecord, JobSpec, JobState

__all__ = ["FINISHED", "Executor", "JobGone", "JobRecord", "JobRun", "JobSpec", "JobState", "JobStore", "create_store"]


def create_store(settings: Settings, **callbacks: Any) -> JobStore:
    """The Redis store when ``REDIS_URL`` is set, else the embedded one in ``JOBS_DIR``."""
    options = {"ttl_s": settings.job_ttl_s, "max_active": settings.max_active_jobs,
               "workers": settings.job_workers, **callbacks}
    if settings.redis_url:
        from .redis_store import RedisJobStore

        return RedisJobStore(settings.redis_url, prefix=settings.redis_prefix, lease_s=settings.job_lease_s, **options)
    from .embedded import EmbeddedJobStore

    return EmbeddedJobStore(Path(settings.jobs_dir), **options)
