"""Repeated documents through the orchestrator and the tiny DeepSeek engine retain nothing of ours.

The soak (bench/load.py) measures resident memory from outside; this checks the Python side
from inside: after a warm-up, further rounds must not leave allocations made under our code
(any traceback frame in ocr_runner/) alive. Native memory (torch, glibc) is not traced here.
"""

import asyncio
import gc
import tracemalloc

import pytest

from ocr_runner.engines import create_engine
from ocr_runner.orchestrator import Orchestrator
from ocr_runner.pipeline import DocumentRequest
from ocr_runner.tasks import Task
from tests.helpers import encode, noise_image

pytestmark = pytest.mark.engine

BATCH = 8
REQUESTS_PER_ROUND = 16
# Bytes a whole round's responses would hold if kept (~3 KB each); interpreter free lists and
# caches filling up after the warm-up stay well under it.
ALLOWED_GROWTH = 32 * 1024
# Deep enough to reach an ocr_runner frame from the library code it calls.
FRAMES = 16


async def one_round(orchestrator: Orchestrator, engine, images: list[bytes]) -> None:
    """``REQUESTS_PER_ROUND`` concurrent documents, batched up to ``BATCH`` pages as the service does."""
    queue: asyncio.Queue = asyncio.Queue()

    async def batcher() -> None:
        while True:
            items = [await queue.get()]
            while not queue.empty() and len(items) < BATCH:
                items.append(queue.get_nowait())
            results = await asyncio.to_thread(engine.run_batch, [job for job, _ in items])
            for (_, answer), result in zip(items, results):
                answer.set_result(result)

    async def infer(job):
        answer = asyncio.get_running_loop().create_future()
        queue.put_nowait((job, answer))
        return await answer

    orchestrator._infer = infer
    worker = asyncio.create_task(batcher())
    responses = await asyncio.gather(*(
        orchestrator.run(DocumentRequest(task=Task.OCR, data=images[i % len(images)]))
        for i in range(REQUESTS_PER_ROUND)
    ))
    worker.cancel()
    assert all(r.success for r in responses)


def ours_alive() -> int:
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*/ocr_runner/*", all_frames=True)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_repeated_documents_leave_nothing_of_ours_behind(tiny_settings):
    engine = create_engine(tiny_settings)
    orchestrator = Orchestrator(tiny_settings, infer=None, cache=None)
    images = [encode(noise_image(size, seed)) for seed, size in enumerate([(96, 96), (120, 90), (90, 120)])]
    tracemalloc.start(FRAMES)
    try:
        asyncio.run(one_round(orchestrator, engine, images))  # warm-up: lazy imports, thread-local processors
        asyncio.run(one_round(orchestrator, engine, images))
        baseline = ours_alive()
        for _ in range(2):
            asyncio.run(one_round(orchestrator, engine, images))
        grown = ours_alive() - baseline
    finally:
        tracemalloc.stop()
    assert grown < ALLOWED_GROWTH, f"{grown} bytes allocated under ocr_runner/ stayed alive over 32 documents"
