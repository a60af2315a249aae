"""One real `bentoml serve` per engine per test session, started side by side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BentoServer

BODY_LIMIT = 2_000_000
MAX_PDF_PAGES = 6
OVERLOAD_KEYS = ("key-one", "key-two")
URL_TEST_HOST = "127.0.0.2"


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
                # Off here so that every request reaches the batched engine.
                "CACHE_ENABLED": "false",
            },
            logs / "deepseek.log",
        ),
        # The tiny model behind a queue short enough to overload on purpose.
        "overload": BentoServer(
            {
                "ENGINE": "deepseek",
                "DEVICE": "cpu",
                "MODEL_NAME": str(tiny_checkpoint),
                "MAX_NEW_TOKENS": "12",
                "MIN_NEW_TOKENS": "12",
                "MAX_BATCH_SIZE": "2",
                "MAX_WAITING_PAGES": "4",
                "CACHE_ENABLED": "false",
                "API_KEYS": ",".join(OVERLOAD_KEYS),
            },
            logs / "overload.log",
        ),
        # The tiny model through BentoML's static batches, with a latency limit a burst overruns.
        "static": BentoServer(
            {
                "ENGINE": "deepseek",
                "DEVICE": "cpu",
                "MODEL_NAME": str(tiny_checkpoint),
                "MAX_NEW_TOKENS": "12",
                "MIN_NEW_TOKENS": "12",
                "BATCHING": "static",
                "MAX_BATCH_SIZE": "2",
                "MAX_LATENCY_MS": "1000",
                "CACHE_ENABLED": "false",
            },
            logs / "static.log",
        ),
        # The embedded CPU engine.
        "rapidocr": BentoServer(
            # Batches of two, so that a four-page PDF finishes in steps a stream can show.
            {"ENGINE": "rapidocr", "MAX_PDF_PAGES": str(MAX_PDF_PAGES), "MAX_BATCH_SIZE": "2", "LOG_FORMAT": "json",
             # The URL tests' local document server; every other loopback address stays refused.
             "URL_ALLOW_HOSTS": URL_TEST_HOST},
            logs / "rapidocr.log",
        ),
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
def overload_server(servers: dict[str, BentoServer]) -> BentoServer:
    return servers["overload"]


@pytest.fixture(scope="session")
def static_server(servers: dict[str, BentoServer]) -> BentoServer:
    return servers["static"]


@pytest.fixture(scope="session")
def rapid_server(servers: dict[str, BentoServer]) -> BentoServer:
    return servers["rapidocr"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the servers' log tails to a failing integration test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("tiny_server", "rapid_server", "overload_server", "static_server"):
            server = getattr(item, "funcargs", {}).get(name)
            if server is not None:
                report.sections.append((f"{name} log (tail)", server.log_tail(6000)))
