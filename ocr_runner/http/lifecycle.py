"""Process lifetime of the service's workers: they die with their parent, and a stop has a deadline.

BentoML starts each service's worker in a session of its own and its process manager waits up to
a day for a worker to exit after SIGTERM (circus' graceful timeout), so a worker stuck in a
non-daemon thread kept the whole server, and its port, alive; and a parent killed with -9 left its
workers serving. Here a worker asks Linux for SIGTERM when its parent dies (its normal graceful
stop: jobs are handed back), and after a SIGTERM it exits by itself at the deadline even if
something still holds it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

log = logging.getLogger("ocr_runner.service")
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGTERM to this process when its parent dies (Linux); called in each worker as it starts."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return
    if os.getppid() != parent:  # the parent died before the request: act as if the signal came
        os.kill(os.getpid(), signal.SIGTERM)


def exit_deadline(seconds: float) -> None:
    """After the first SIGTERM, exit within ``seconds`` whatever still runs.

    Called once the server has installed its own SIGTERM handler (uvicorn's graceful stop), which
    keeps running first; this only adds the deadline.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    armed = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        if not armed.is_set():
            armed.set()
            timer = threading.Timer(seconds, _exit_now, args=(seconds,))
            timer.daemon = True
            timer.start()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def _exit_now(seconds: float) -> None:
    log.warning("still running %.0f s after SIGTERM: exiting now", seconds)
    logging.shutdown()
    os._exit(0)
