"""A server process a benchmark starts and stops: wait until its /health answers, stop it
politely, then firmly."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import httpx


def wait_healthy(
    process: subprocess.Popen, health_url: str, timeout: float, log_path: Path, poll: float
) -> float:
    """Seconds until ``health_url`` answered 2xx; RuntimeError if the process exits first or
    ``timeout`` passes (the process is then stopped)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited while starting; log: {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health_url, timeout=2).is_success:
                return time.monotonic() - started
        time.sleep(poll)
    stop(process)
    raise RuntimeError(f"the server did not start in {timeout:.0f} s; log: {log_path}")


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
