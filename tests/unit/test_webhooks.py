"""Job callbacks: signed over the exact body, retried with backoff, private targets refused."""

import asyncio
import json

import httpx
import pytest

from ocr_runner.errors import UrlNotAllowed
from ocr_runner.settings import load_settings
from ocr_runner.webhooks import SIGNATURE_HEADER, WebhookSender, sign, verify

pytestmark = pytest.mark.unit


def test_signed_and_retried_until_accepted(monkeypatch):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) < 3 else 200)

    async def no_wait(seconds):
        return None

    monkeypatch.setattr("ocr_runner.webhooks.asyncio.sleep", no_wait)
    settings = load_settings(webhook_secret="s3cret", webhook_allow_hosts=["127.0.0.1"], webhook_attempts=4)
    sender = WebhookSender(settings, transport=httpx.MockTransport(handler))
    assert asyncio.run(sender.deliver("http://127.0.0.1:9/hook", "job.completed", {"job": {"job_id": "j1"}}))
    assert len(calls) == 3
    body = calls[-1].content
    assert verify("s3cret", body, calls[-1].headers[SIGNATURE_HEADER]) and not verify("other", body, sign("x", body))
    assert json.loads(body)["job"] == {"job_id": "j1"} and calls[-1].headers["host"] == "127.0.0.1:9"


def test_a_refusing_receiver_is_not_retried():
    calls = []
    settings = load_settings(webhook_allow_hosts=["127.0.0.1"])
    sender = WebhookSender(settings, transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(410)))
    assert not asyncio.run(sender.deliver("http://127.0.0.1:9/hook", "job.failed", {}))
    assert len(calls) == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://10.0.0.8/x", "http://169.254.169.254/", "http://[::1]/"])
def test_private_targets_are_refused_unless_allowed(url):
    sender = WebhookSender(load_settings())
    with pytest.raises(UrlNotAllowed):
        asyncio.run(sender.check(url))
    allowed = WebhookSender(load_settings(webhook_allow_ranges=["0.0.0.0/0", "::/0"]))
    asyncio.run(allowed.check(url))
