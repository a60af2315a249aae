"""Documents by URL, fetched without letting a client reach the server's own network.

A URL from a client is a request the server makes on its behalf (SSRF). Every hop is
checked after DNS resolution: each address the name resolves to must be public (not
loopback, private, link-local, shared, multicast, reserved or a cloud metadata address),
unless the host or range is allowed in settings. The request then goes to the address that
was checked, not to a second lookup of the name (DNS rebinding), with the name kept for the
``Host`` header and TLS. Redirects are followed by hand so that each target is checked too.
Sizes are capped while reading, and only image and PDF content is accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from .errors import PayloadTooLarge, UrlFetchFailed, UrlNotAllowed
from .settings import Settings

# Beyond what ``ipaddress`` calls private: the metadata endpoints clouds serve on link-local
# and unique-local addresses are covered by those checks; these are named for the message.
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
ACCEPTED_TYPES = ("image/", "application/pdf", "application/octet-stream", "binary/octet-stream")
REDIRECTS = (301, 302, 303, 307, 308)


class AddressPolicy:
    """Which addresses a URL given by a client may reach: public ones, and the hosts and ranges allowed.

    Shared by document URLs and job callbacks (each with their own allow lists).
    """

    def __init__(self, allow_hosts: list[str], allow_ranges: list[str]) -> None:
        self._allowed_hosts = {h.lower().rstrip(".") for h in allow_hosts}
        self._allowed_ranges = [ipaddress.ip_network(r, strict=False) for r in allow_ranges]

    async def checked(self, url: str, field: str) -> tuple[str, str]:
        """The URL's host and the URL aimed at the checked address it resolved to."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UrlNotAllowed(f"{field} must be an http(s) URL", field=field)
        host = parts.hostname.lower().rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise UrlFetchFailed(f"{field}: cannot resolve {host!r}", field=field) from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        for address in addresses:
            if not self.allowed(host, address):
                what = "a cloud metadata address" if address in METADATA_ADDRESSES else "not a public address"
                raise UrlNotAllowed(f"{field}: {host} resolves to {address}, {what}", field=field)
        address = str(addresses[0])
        netloc = f"[{address}]" if ":" in address else address
        if parts.port:
            netloc += f":{parts.port}"
        return host, urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    def allowed(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if host in self._allowed_hosts or any(address in network for network in self._allowed_ranges):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_global and not address.is_multicast and address not in METADATA_ADDRESSES


class UrlFetcher:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.url_allow_hosts, settings.url_allow_ranges)
        self._transport = transport

    async def fetch(self, url: str, field: str = "document_url") -> bytes:
        """The document's bytes; ``UrlNotAllowed``, ``UrlFetchFailed`` or ``PayloadTooLarge`` otherwise."""
        timeout = httpx.Timeout(self.settings.url_fetch_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=self._transport,
                                     trust_env=False) as client:
            try:
                return await asyncio.wait_for(self._follow(client, url, field), self.settings.url_fetch_timeout_s)
            except asyncio.TimeoutError:
                raise UrlFetchFailed(f"{field}: no complete answer within {self.settings.url_fetch_timeout_s:g} s",
                                     field=field) from None

    async def _follow(self, client: httpx.AsyncClient, url: str, field: str) -> bytes:
        for _ in range(self.settings.url_max_redirects + 1):
            host, pinned = await self._checked(url, field)
            try:
                async with client.stream(
                    "GET", pinned, headers={"Host": host_header(url), "Accept": "image/*, application/pdf"},
                    extensions={"sni_hostname": host},
                ) as response:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise UrlFetchFailed(f"{field}: the server answered {response.status_code}", field=field)
                    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if kind and not kind.startswith(ACCEPTED_TYPES):
                        raise UrlFetchFailed(f"{field}: content type {kind!r} is not an image or a PDF", field=field)
                    return await self._read_capped(response, field)
            except httpx.HTTPError as exc:
                raise UrlFetchFailed(f"{field}: could not fetch it ({exc.__class__.__name__})", field=field) from None
        raise UrlFetchFailed(f"{field}: more than {self.settings.url_max_redirects} redirects", field=field)

    async def _read_capped(self, response: httpx.Response, field: str) -> bytes:
        limit = self.settings.url_max_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"{field}: the document is larger than {limit} bytes", field=field)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > limit:
                raise PayloadTooLarge(f"{field}: the document is larger than {limit} bytes", field=field)
        return bytes(body)

    async def _checked(self, url: str, field: str) -> tuple[str, str]:
        return await self.policy.checked(url, field)


def host_header(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1]
