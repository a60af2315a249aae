"""The engine worker is killed mid-load: every request is answered correctly or with an honest 503,
none hangs or is lost, and the service recovers on a new worker."""

import asyncio
import base64

import httpx
import pytest

from bench.load import SIZES, engine_worker_pid, fault_run
from tests.helpers import BentoServer, encode, noise_image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fault_server(tiny_checkpoint, tmp_path_factory):
    with BentoServer(
        {"ENGINE": "deepseek", "DEVICE": "cpu", "MODEL_NAME": str(tiny_checkpoint), "MAX_NEW_TOKENS": "12",
         "MIN_NEW_TOKENS": "12", "MAX_BATCH_SIZE": "8", "CACHE_ENABLED": "false", "MAX_LATENCY_MS": "120000"},
        tmp_path_factory.mktemp("fault") / "fault.log",
    ) as server:
        yield server


def test_killing_the_engine_mid_load_loses_nothing_and_recovers(fault_server):
    images = [base64.b64encode(encode(noise_image(size, seed=i))).decode() for i, size in enumerate(SIZES)]
    expected = [
        httpx.post(fault_server.url + "/ocr", json={"image_base64": image}, timeout=60).json()["raw_result"]
        for image in images
    ]
    first_engine = engine_worker_pid(fault_server.process.pid)
    report = asyncio.run(fault_run(fault_server, images, expected, total=80, concurrency=40, timeout_s=120,
                                   kill_after=1.5))
    assert report["killed"] == first_engine is not None
    assert report["lost"] == 0 and report["wrong_answers"] == 0 and report["other_5xx"] == 0, report
    assert set(report["outcomes"]) <= {"correct", "503"}, report["outcomes"]  # every 503 carried Retry-After
    assert report["recovered"] and report["new_engine_pid"] not in (None, first_engine), report
    assert httpx.get(fault_server.url + "/readyz", timeout=10).status_code == 200
