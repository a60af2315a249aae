"""Many simultaneous requests through both services: all answered correctly, batches formed."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.helpers import b64, encode, noise_image

pytestmark = pytest.mark.integration
CONCURRENCY = 96
SIZES = [(120, 90), (600, 300), (300, 900), (600, 400)]  # 0, 2, 3 and 6 tiles on the tiny model


def test_concurrent_requests_are_batched_and_never_mixed_up(tiny_server):
    images = [b64(encode(noise_image(size, seed=10 + i))) for i, size in enumerate(SIZES)]
    # Reference answers, one request at a time.
    expected = [
        httpx.post(tiny_server.url + "/ocr", json={"image_base64": image}, timeout=60).json()["raw_result"]
        for image in images
    ]
    assert len(set(expected)) > 1, "random weights should tell these images apart"

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(timeout=300, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(tiny_server.url + "/ocr", json={"image_base64": images[i % len(images)]})
                    for i in range(CONCURRENCY)
                )
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * CONCURRENCY
    for i, response in enumerate(responses):
        assert response.json()["raw_result"] == expected[i % len(images)], f"request {i} got another image's answer"
    batch_sizes = [r.json()["metadata"]["batch_size"] for r in responses]
    assert max(batch_sizes) > 1, batch_sizes

    metrics = httpx.get(tiny_server.url + "/metrics").text
    # Continuous batching: the engine's own histogram of rows decoded together at each step.
    sums = re.findall(r"^ocr_decode_batch_rows_sum(?:\{[^}]*\})? ([0-9.e+]+)", metrics, re.M)
    counts = re.findall(r"^ocr_decode_batch_rows_count(?:\{[^}]*\})? ([0-9.e+]+)", metrics, re.M)
    assert sums and counts and float(sums[0]) > float(counts[0]), "mean rows per decode step should exceed 1"
