"""The CPU image of the Bento, built for real from the local base (deploy/container/build-cpu.sh), run as a
container with its port on loopback, and called over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import ROOT, b64, encode, free_port, render_page

pytestmark = pytest.mark.container
BASE_IMAGE = "deepseek-ocr-base:bookworm"  # docker.base_image in bentofile.cpu.yaml
LINES = ["Shipping label 7731", "Deliver to Berlin office", "Fragile handle with care"]


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def require_docker() -> None:
    """Skip without a docker daemon, or without root to debootstrap a missing base image, unless
    REQUIRE_CONTAINER_TESTS=1 (set by CI, which starts dockerd as root) makes that a failure."""
    try:
        reachable = docker("info", timeout=30).returncode == 0
    except FileNotFoundError:
        reachable = False
    if not reachable:
        reason = "no docker daemon (.ci/run installs and starts one)"
    elif os.geteuid() != 0 and docker("image", "inspect", BASE_IMAGE).returncode != 0:
        reason = f"{BASE_IMAGE} is missing and deploy/container/base-image.sh needs root"
    else:
        return
    if os.environ.get("REQUIRE_CONTAINER_TESTS") == "1":
        pytest.fail(f"REQUIRE_CONTAINER_TESTS=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_docker()
    tag = f"deepseek-ocr-cpu:test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "BENTOML_HOME": str(tmp_path_factory.mktemp("bentoml-home")), "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "deploy/container/build-cpu.sh", tag], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    # The stage durations (shown with -s, and with the report of a failure).
    print("".join(line + "\n" for line in result.stderr.splitlines() if line.startswith("stage ")))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    try:
        yield tag
    finally:
        docker("rmi", "-f", tag, timeout=600)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    port = free_port()
    name = f"deepseek-ocr-cpu-test-{uuid.uuid4().hex[:8]}"
    # The service listens on PORT (8000 by default, configuration.yaml), not BentoML's 3000.
    started = docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", image)
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(name, url, timeout_s=300)
        yield url
    finally:
        docker("rm", "-f", name)


def wait_ready(name: str, url: str, timeout_s: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() != "true":
            pytest.fail(f"container exited:\n{container_logs(name)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                print(f"container ready after {time.monotonic() - start:.0f}s")
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"container not ready after {timeout_s}s:\n{container_logs(name)}")


def container_logs(name: str) -> str:
    logs = docker("logs", name)
    return logs.stdout[-4000:] + logs.stderr[-4000:]


def test_health_reports_the_cpu_engine(container):
    health = httpx.get(f"{container}/health", timeout=30).json()
    assert health["status"] == "ok" and health["engine"] == "rapidocr" and health["cuda_available"] is False


def test_ocr_reads_a_rendered_page(container):
    response = httpx.post(f"{container}/ocr", json={"image_base64": b64(encode(render_page(LINES)))}, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [line.strip() for line in data["result"].splitlines() if line.strip()] == LINES
    assert data["metadata"]["engine"] == "rapidocr"
