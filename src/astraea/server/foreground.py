"""The engine loop on the calling thread (the main thread), HTTP on a background thread.

Why: libgomp (torch's OpenMP on x86 Linux) gives every thread that starts a parallel region a
pool of its own, and once it manages more threads than there are CPUs, an idle worker spins
only a few hundred rounds before it sleeps on a futex (``gomp_throttled_spin_count_var``), so
each of the hundreds of parallel regions in a step starts with a wake-up. The main thread
loads the model, so its pool exists from then on; an engine thread of its own made a second
one. Measured on 2 cores (2026-12-02): a batch-4 decode step took 108-128 ms behind our
server against 62 ms called on the main thread, and 60-74 ms once the server's engine loop
ran on the thread that had loaded the model. So the loop runs where the model was loaded,
as vLLM's engine core runs its model on its process's main thread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from astraea.server.background import BackgroundServer

T = TypeVar("T")


def serve(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """``uvicorn.run`` with the engine on this thread: until SIGINT or SIGTERM (a second
    one exits at once), then uvicorn shuts down gracefully and the loop ends."""
    worker = app.state.service.worker
    worker.drive()
    http = BackgroundServer(app, host, port, log_level)
    server = http.server

    def on_signal(*_: object) -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(http)
            except RuntimeError as exc:
                message = f"could not serve on {host}:{port} (see uvicorn's error above)"
                raise ValueError(message) from exc
            worker.run(until=lambda: not http.thread.is_alive())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_beside(app: Any, client: Callable[[str], T]) -> T:
    """Serve ``app`` on a free loopback port, run ``client(url)`` (url: the /v1 base) on a
    thread of its own and the engine on this one; returns what the client returned once the
    engine has drained (the client's last calls answered) or raises what it raised."""
    worker = app.state.service.worker
    worker.drive()
    outcome: dict[str, Any] = {}

    def run_client(url: str) -> None:
        try:
            outcome["value"] = client(url)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    with BackgroundServer(app) as server:
        thread = threading.Thread(
            target=run_client, args=(server.url,), name="astraea-client", daemon=True
        )
        thread.start()
        worker.run(until=lambda: not thread.is_alive())
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
