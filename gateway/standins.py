"""``swx serve`` runs the regulator stand-ins as their own process.

The stand-ins keep their state (what each regulator received, matched, taxed) in memory. Mounted in
every uvicorn worker, each worker would hold a different customs, so ``swx serve --workers N`` starts
one stand-ins process beside the window instead — ``swx regulators serve --keys-from-window`` on
``127.0.0.1:SWX_REGULATORS_PORT`` (default ``SWX_PORT`` + 100), where every worker's routes (and
every ``swx worker``'s, from the same settings) deliver. The stand-ins take their keys from the window over its API, as an
onboarded regulator would (mock_customs/onboarding.py), and they stop with the window: on a clean
stop here, and by the kernel's parent-death signal (SIGKILL) if the window is killed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

from .config import Settings

PR_SET_PDEATHSIG = 1
PORT_WAIT = 30.0  # seconds a taken port is waited for


class PortTaken(RuntimeError):
    pass


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        # SIGKILL: a window killed mid-flow takes its stand-ins along at once (their state is in memory
        # and gone either way); a graceful stop would first wait for their requests to the dead window.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: a clean stop still stops the stand-ins


def _wait_free(port: int, wait: float = PORT_WAIT) -> None:
    """Return once ``port`` can be bound. The stand-ins of a window that was just stopped or killed may
    still be on their way out, so a taken port is waited for a while."""
    deadline = time.monotonic() + wait
    while True:
        with socket.socket() as probe:
            # as uvicorn binds: connections of a killed predecessor left in TIME-WAIT do not hold the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise PortTaken(f"port {port} for the regulator stand-ins is still taken after {wait:g} s: set "
                            "SWX_REGULATORS_PORT to a free one, or SWX_REGULATORS_URL to stand-ins already running")
        time.sleep(0.2)


def start(settings: Settings, operator_token: str) -> subprocess.Popen:
    """Start the stand-ins' process where ``settings.regulators_base()`` says they are."""
    port = settings.stand_ins_port()
    _wait_free(port)
    env = {
        **os.environ,
        "SWX_MOCK_OPERATOR_TOKEN": operator_token,
        "SWX_MOCK_DELIVERY_TOKEN": settings.effective_delivery_token(operator_token),
    }
    command = [sys.executable, "-m", "gateway.cli", "regulators", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--gateway", settings.base_url(), "--keys-from-window"]
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    process = subprocess.Popen(command, env=env, preexec_fn=preexec)  # noqa: PLW1509 - prctl only, no locks
    return process


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
