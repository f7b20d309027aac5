"""Our server in a background thread: on a free loopback port for the demo, benchmarks and
tests that drive it over real HTTP from the same process, and under `astraea serve`
(foreground.py runs the engine on the calling thread meanwhile)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import uvicorn


class BackgroundServer:
    """``with BackgroundServer(app) as server:`` serves ``app``; ``server.url`` is /v1."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app = app
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="astraea-http", daemon=True)
        self.root = self.url = ""

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
            self.server.run()

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.root = f"http://{host}:{port}"
        self.url = f"{self.root}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
