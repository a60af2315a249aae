"""Stopping a server: SIGTERM lets pages in flight finish, leaves the job resumable and frees the port;
the next start resumes it from the pages read (embedded store); a parent killed with -9 takes its
workers with it."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import httpx
import pytest

from tests.helpers import BentoServer, b64, make_pdf

pytestmark = pytest.mark.integration
GRACE_S = 5


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_sigterm_leaves_the_job_to_resume_at_the_next_start(tmp_path):
    jobs_dir = tmp_path / "jobs"
    env = {"ENGINE": "rapidocr", "JOBS_DIR": str(jobs_dir), "SHUTDOWN_GRACE_S": str(GRACE_S),
           "MAX_PAGES_IN_FLIGHT": "2", "JOB_WORKERS": "1"}
    pages = [[f"Restart page {n} kept"] for n in range(10)]
    first = BentoServer(env, tmp_path / "first.log")
    try:
        first.wait_ready()
        body = {"image_base64": b64(make_pdf(pages))}
        job_id = httpx.post(f"{first.url}/jobs", json=body, timeout=60).json()["job_id"]
        deadline = time.monotonic() + 120
        while (status := httpx.get(f"{first.url}/jobs/{job_id}").json())["progress"]["pages_done"] < 3:
            assert time.monotonic() < deadline and status["status"] != "completed", status
            time.sleep(0.05)
        stopped_at = time.monotonic()
        os.kill(first.process.pid, signal.SIGTERM)  # a plain stop (systemd, docker stop, kubelet)
        first.process.wait(timeout=GRACE_S + 30)
        stop_s = time.monotonic() - stopped_at
    finally:
        first.close()
    assert stop_s < GRACE_S + 20 and port_is_free(first.port), stop_s
    journal = json.loads((jobs_dir / f"{job_id}.json").read_text())
    assert journal["state"] == "queued" and 3 <= journal["pages_done"] < len(pages), journal
    read_before = journal["pages_done"]

    second = BentoServer(env, tmp_path / "second.log")
    try:
        second.wait_ready()
        deadline = time.monotonic() + 180
        while (status := httpx.get(f"{second.url}/jobs/{job_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline and status["status"] in ("queued", "running"), status
            time.sleep(0.2)
        result = httpx.get(f"{second.url}/jobs/{job_id}/result", timeout=30).json()
    finally:
        second.close()
    assert [" ".join(p["result"].split()) for p in result["pages"]] == [" ".join(p) for p in pages]
    assert json.loads((jobs_dir / f"{job_id}.json").read_text())["attempts"] == 2
    print(f"restart: {read_before} of {len(pages)} pages read before SIGTERM, stopped in {stop_s:.1f} s")


def test_workers_die_with_a_killed_parent(tmp_path):
    import psutil

    server = BentoServer({"ENGINE": "rapidocr"}, tmp_path / "server.log")
    try:
        server.wait_ready()
        workers = psutil.Process(server.process.pid).children(recursive=True)
        assert workers
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=GRACE_S + 25)
        assert not alive, [p.cmdline() for p in alive]
        assert port_is_free(server.port)
    finally:
        server.close()
