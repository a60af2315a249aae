"""A bounded in-memory cache of engine results, keyed by content hash and every setting that matters."""

from __future__ import annotations

import hashlib
import threading

from cachetools import LRUCache

from .engines.base import EnginePage, EngineResult


def job_key(job: EnginePage) -> str:
    digest = hashlib.sha256(job.image).hexdigest()
    return "|".join(
        str(part)
        for part in (
            digest, job.task.value, job.prompt, job.base_size, job.image_size, job.crop_mode,
            job.max_new_tokens, job.locate_text,
            hashlib.sha256(repr(job.text_layer).encode()).hexdigest()[:16] if job.text_layer else None,
        )
    )


class ResultCache:
    """LRU bounded by the approximate bytes of the cached texts; failures are never cached."""

    def __init__(self, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._entries: LRUCache[str, EngineResult] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda r: 512 + len(r.text.encode())
        )

    def get(self, job: EnginePage) -> EngineResult | None:
        with self._lock:
            return self._entries.get(job_key(job))

    def put(self, job: EnginePage, result: EngineResult) -> None:
        if result.error is not None:
            return
        with self._lock:
            try:
                self._entries[job_key(job)] = result
            except ValueError:  # larger than the whole cache
                pass

    def __len__(self) -> int:
        return len(self._entries)
