"""One real `bentoml serve` per engine per test session, started side by side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BentoServer

BODY_LIMIT = 2_000_000


@pytest.fixture(scope="session")
def servers(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, BentoServer]]:
    logs = tmp_path_factory.mktemp("servers")
    started = {
        # The tiny random DeepSeek-OCR-2 checkpoint through the production engine, on CPU.
        "deepseek": BentoServer(
            {
                "ENGINE": "deepseek",
                "DEVICE": "cpu",
                "MODEL_NAME": str(tiny_checkpoint),
                "MAX_NEW_TOKENS": "12",
                "MIN_NEW_TOKENS": "12",
                "MAX_BATCH_SIZE": "8",
                "MAX_BODY_BYTES": str(BODY_LIMIT),
            },
            logs / "deepseek.log",
        ),
        # The embedded CPU engine, with a latency limit low enough to overload on purpose.
        "rapidocr": BentoServer({"ENGINE": "rapidocr", "MAX_LATENCY_MS": "2500"}, logs / "rapidocr.log"),
    }
    try:
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        for server in started.values():
            server.close()


@pytest.fixture(scope="session")
def tiny_server(servers: dict[str, BentoServer]) -> BentoServer:
    return servers["deepseek"]


@pytest.fixture(scope="session")
def rapid_server(servers: dict[str, BentoServer]) -> BentoServer:
    return servers["rapidocr"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the servers' log tails to a failing integration test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("tiny_server", "rapid_server"):
            server = getattr(item, "funcargs", {}).get(name)
            if server is not None:
                report.sections.append((f"{name} log (tail)", server.log_tail(6000)))
