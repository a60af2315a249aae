"""Keep a worker's resident memory flat under repeated load (glibc malloc settings).

Measured (bench/results/load-vm-soak-memory.json): after a load run, almost all of the
growth of both workers is heap memory already freed but still resident; ``malloc_trim(0)``
called in the idle workers gave back 148 of 166 MB (API) and 382 of 405 MB (engine). glibc
gives threads that contend for the heap their own arenas (up to 8 per core) and an arena
returns memory to the system only from its top, so the buffers of images, requests and
tensors that many threads churn through stay resident, scattered over arenas, and creep up
run after run. Fewer arenas and a periodic trim keep it flat. Every call here is a no-op
where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
import time

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
_trimmer: threading.Thread | None = None


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version, libc.malloc_trim, libc.mallopt  # noqa: B018 - only glibc has all three
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas for threads created from now on; 0 keeps glibc's default."""
    libc = _glibc()
    if count <= 0 or libc is None:
        return False
    applied = bool(libc.mallopt(M_ARENA_MAX, count))
    if not applied:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", count)
    return applied


def release_free_memory() -> bool:
    """Hand freed heap pages of every arena back to the system (``malloc_trim(0)``)."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def start_periodic_trim(interval_s: float) -> bool:
    """Trim every ``interval_s`` seconds from a daemon thread (once per process; 0 turns it off).

    A timer rather than a trim per request or batch: a trim locks each arena while it walks
    it, so at hundreds of requests a second it would stall the threads that allocate.
    """
    global _trimmer
    if interval_s <= 0 or _glibc() is None or _trimmer is not None:
        return False

    def trim_forever() -> None:
        while True:
            time.sleep(interval_s)
            release_free_memory()

    _trimmer = threading.Thread(target=trim_forever, name="malloc-trim", daemon=True)
    _trimmer.start()
    return True
