"""A bounded in-memory cache of engine results, keyed by content hash and every setting that matters."""

from __future__ import annotations

import hashlib
import threading

from cachetools import LRUCache

from .engines.base import EnginePage, EngineResult


def page_key(page: EnginePage) -> str:
    digest = hashlib.sha256(page.image).hexdigest()
    return "|".join(
        str(part)
        for part in (
            digest, page.task.value, page.prompt, page.base_size, page.image_size, page.crop_mode,
            page.max_new_tokens, page.locate_text,
            hashlib.sha256(repr(page.text_layer).encode()).hexdigest()[:16] if page.text_layer else None,
        )
    )


class ResultCache:
    """LRU bounded by the approximate bytes of the cached texts; failures are never cached."""

    def __init__(self, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._entries: LRUCache[str, EngineResult] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda r: 512 + len(r.text.encode())
        )

    def get(self, page: EnginePage) -> EngineResult | None:
        with self._lock:
            return self._entries.get(page_key(page))

    def put(self, page: EnginePage, result: EngineResult) -> None:
        if result.error is not None:
            return
        with self._lock:
            try:
                self._entries[page_key(page)] = result
            except ValueError:  # larger than the whole cache
                pass

    def __len__(self) -> int:
        return len(self._entries)
