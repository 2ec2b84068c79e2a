"""The stand-ins take their keys from the window, as a regulator the operator onboards would.

A stand-in running as its own process (``swx regulators serve --keys-from-window``, which ``swx serve``
and the compose file start) needs a key per regulator to post verdicts and read the registry. It asks
the window for them over the window's own API with the operator token — ``POST
/v1/regulators/{name}/keys`` with ``revokeOthers`` — once the window answers ``/healthz``: no shared
database, no key file, and a restarted stand-in retires the keys of the one before it.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from mock_customs.config import MockSettings


class OnboardingFailed(RuntimeError):
    """The window did not answer in time, or refused the operator token."""


async def keys_from_window(settings: MockSettings, names: list[str], *, wait: float = 120.0,
                           transport: httpx.AsyncBaseTransport | None = None) -> dict[str, str]:
    """A fresh key for each of ``names``, every older key of that regulator revoked."""
    if not settings.operator_token:
        raise OnboardingFailed("SWX_MOCK_OPERATOR_TOKEN is not set: the stand-ins cannot ask the window for keys")
    auth = {"Authorization": f"Bearer {settings.operator_token}"}
    deadline = time.monotonic() + wait
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=10, transport=transport) as http:
        while True:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
                reason = "it answers /healthz with an error"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise OnboardingFailed(f"the window at {settings.gateway_url} was not healthy within {wait:g} s ({reason})")
            await asyncio.sleep(0.2)
        keys = {}
        for name in names:
            r = await http.post(f"/v1/regulators/{name}/keys", json={"revokeOthers": True}, headers=auth)
            if r.status_code != 201:
                raise OnboardingFailed(f"the window refused a key for {name}: {r.status_code} {r.text[:300]}")
            keys[name] = r.json()["apiKey"]
    return keys
