"""The registry shared with the regulators: sharing policy, regulators' views, changes feed, access log."""

from __future__ import annotations

from typing import Any

from .policy import PolicyError, SharingPolicy, load_policy

__all__ = ["PolicyError", "SharingPolicy", "install", "load_policy"]


def install(app: Any, policy: SharingPolicy | None = None) -> None:
    """Load the sharing policy now (a bad one stops start-up) and add the regulators' endpoints."""
    from .endpoints import router

    app.state.sharing_policy = policy or load_policy()
    app.include_router(router)
