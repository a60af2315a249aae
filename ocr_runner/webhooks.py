"""Job callbacks: a signed POST to the job's ``callback_url`` when it completes or fails.

The body is JSON (the event, the job's status, a timestamp); ``X-OCR-Signature`` is
``sha256=<hex>``, the HMAC-SHA256 of the exact body bytes under ``WEBHOOK_SECRET``, so a receiver
recomputes it over what it read and compares in constant time. A callback is a request the server
makes for a client, so its target is checked like a document URL (``fetch.AddressPolicy``, with
the webhook allow lists) when the job is submitted and again before every try. Tries back off
1, 2, 4, ... s; a 2xx ends them, as does a 4xx other than 408 and 429 (the receiver refused it).
Delivery is at least once from the replica that finished the job, at most ``WEBHOOK_ATTEMPTS`` tries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from .errors import OCRError
from .fetch import AddressPolicy, host_header
from .settings import Settings

log = logging.getLogger("ocr_runner.webhooks")
SIGNATURE_HEADER = "X-OCR-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does with the header (also used by the tests)."""
    return hmac.compare_digest(sign(secret, body), signature)


class WebhookSender:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.webhook_allow_hosts, settings.webhook_allow_ranges)
        self._transport = transport
        self._deliveries: set[asyncio.Task[bool]] = set()

    async def check(self, url: str) -> None:
        """At submit: a callback the server would refuse to call is a 422 now, not a silent miss later."""
        await self.policy.checked(url, "callback_url")

    def send_later(self, url: str, event: str, payload: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self.deliver(url, event, payload))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def deliver(self, url: str, event: str, payload: dict[str, Any]) -> bool:
        body = json.dumps({"event": event, "sent_at": time.time(), **payload}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-OCR-Event": event, "User-Agent": "deepseek-ocr-webhook"}
        if self.settings.webhook_secret:
            headers[SIGNATURE_HEADER] = sign(self.settings.webhook_secret, body)
        timeout = httpx.Timeout(self.settings.webhook_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=self._transport,
                                     trust_env=False) as client:
            for attempt in range(self.settings.webhook_attempts):
                if attempt:
                    await asyncio.sleep(min(2 ** (attempt - 1), 60))
                try:
                    host, pinned = await self.policy.checked(url, "callback_url")
                    response = await client.post(pinned, content=body, headers={**headers, "Host": host_header(url)},
                                                 extensions={"sni_hostname": host})
                except OCRError as exc:
                    log.warning("callback %s refused: %s", url, exc.message)
                    if exc.code.value == "url_not_allowed":
                        return False
                    continue
                except httpx.HTTPError as exc:
                    log.warning("callback %s: try %d failed (%s)", url, attempt + 1, exc.__class__.__name__)
                    continue
                if 200 <= response.status_code < 300:
                    return True
                log.warning("callback %s: try %d answered %d", url, attempt + 1, response.status_code)
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    return False
        return False

    async def close(self, timeout_s: float = 5.0) -> None:
        """Shutdown: give callbacks under way a moment to land."""
        if self._deliveries:
            await asyncio.wait(list(self._deliveries), timeout=timeout_s)
