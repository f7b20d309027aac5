"""The engine loop on the calling thread, HTTP beside it (server/foreground.py)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import httpx
import pytest

from astraea.server import ServerConfig, create_app
from astraea.server.foreground import run_beside, serve
from tests.server.conftest import MODEL, tiny_engine


def chat(url: str, text: str = "say:hi") -> dict:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 8}
    response = httpx.post(url + "/chat/completions", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def step_threads(engine) -> set[int]:
    """Record the thread of every engine step from now on."""
    seen: set[int] = set()
    step = engine.step

    def recorded():
        seen.add(threading.get_ident())
        return step()

    engine.step = recorded
    return seen


def test_the_engine_steps_on_the_calling_thread_while_a_client_thread_calls(tiny_model, tokenizer):
    engine = tiny_engine(tiny_model, tokenizer)
    app = create_app(engine, ServerConfig(served_model_name=MODEL))
    seen = step_threads(engine)
    answer = run_beside(app, lambda url: chat(url)["choices"][0]["message"]["content"])
    assert answer == "hi"
    assert seen == {threading.get_ident()}
    assert not app.state.service.worker.alive  # the loop ended with the client


def test_a_client_that_fails_ends_the_loop_and_its_error_reaches_the_caller(tiny_model, tokenizer):
    app = create_app(tiny_engine(tiny_model, tokenizer), ServerConfig(served_model_name=MODEL))

    def client(url: str) -> None:
        chat(url)
        raise LookupError("the client's own bug")

    with pytest.raises(LookupError, match="own bug"):
        run_beside(app, client)


def test_a_driven_worker_refuses_its_own_thread_and_run_needs_drive(tiny_model, tokenizer):
    app = create_app(tiny_engine(tiny_model, tokenizer), ServerConfig(served_model_name=MODEL))
    worker = app.state.service.worker
    with pytest.raises(RuntimeError, match="drive"):
        worker.run()
    worker.drive()
    worker.start()  # the lifespan's call: a no-op once driven
    assert not worker.alive
    worker.stop()
    worker.run()  # the stop is waiting: returns at once
    assert not worker.alive


def test_serve_stops_on_sigint_and_gives_the_handler_back(tiny_model, tokenizer):
    engine = tiny_engine(tiny_model, tokenizer)
    app = create_app(engine, ServerConfig(served_model_name=MODEL))
    seen = step_threads(engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answers: list[str] = []

    def call_then_interrupt() -> None:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        answers.append(chat(url + "/v1")["choices"][0]["message"]["content"])
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    threading.Thread(target=call_then_interrupt, daemon=True).start()
    serve(app, "127.0.0.1", port, log_level="warning")
    assert answers == ["hi"]
    assert seen == {threading.get_ident()}
    assert signal.getsignal(signal.SIGINT) is before


def test_serve_on_a_taken_port_is_a_clear_error(tiny_model, tokenizer):
    app = create_app(tiny_engine(tiny_model, tokenizer), ServerConfig(served_model_name=MODEL))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"could not serve on 127.0.0.1:{port}"):
            serve(app, "127.0.0.1", port, log_level="critical")
