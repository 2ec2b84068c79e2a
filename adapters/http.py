"""The built-in adapter: an HTTP POST to the regulator (``{url}/messages`` or ``{url}/registrations``)."""

from __future__ import annotations

import httpx

from .base import AdapterSettings, DeliveryResult, Endpoint, Outgoing

PATHS = {"message": "/messages", "registration": "/registrations"}


class HttpAdapter:
    def __init__(self, endpoint: Endpoint, settings: AdapterSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.endpoint = endpoint
        self.url = endpoint.url.rstrip("/")
        self.token = settings.token
        timeout = settings.timeout
        # One client per regulator: its connections are kept alive between deliveries, as many as the
        # dispatcher sends at once; HTTP/2 (one connection, many streams) where the regulator offers it.
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), http2=True,
            limits=httpx.Limits(max_connections=settings.connections, max_keepalive_connections=settings.connections),
        )
        self._owned = client is None

    async def deliver(self, item: Outgoing) -> DeliveryResult:
        headers = {"Content-Type": item.content_type, **item.headers}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            r = await self._client.post(self.url + PATHS[item.kind], content=item.body, headers=headers)
        except httpx.TimeoutException:
            return DeliveryResult(False, None, f"timed out talking to {item.regulator} at {self.url}")
        except httpx.HTTPError as exc:
            return DeliveryResult(False, None, f"could not reach {item.regulator} at {self.url}: {type(exc).__name__} {exc}".strip())
        if r.is_success:
            return DeliveryResult(True, r.status_code)
        return DeliveryResult(False, r.status_code, f"{item.regulator} answered {r.status_code}: {r.text[:300]}")

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
