"""Big bodies cost the server nothing it cannot afford: the size limit holds while reading
(chunked bodies too), and large prompts never stall the event loop."""

import threading
import time

import httpx

from tests.server.conftest import MODEL, idle

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(serve):
    server = serve(max_body_bytes=64 * 1024)
    sent = [0]

    def body():  # 10 MiB with no Content-Length: only reading can tell its size
        for _ in range(10 * 1024):
            sent[0] += 1024
            yield b"x" * 1024

    with httpx.Client(base_url=server.root, timeout=10) as http:
        r = http.post(CHAT, content=body(), headers=JSON)
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        assert sent[0] < 1024 * 1024  # the server stopped reading near its limit
        ok = http.post(
            CHAT, json={"model": MODEL, "messages": [{"role": "user", "content": "say:ok"}]}
        )
        assert ok.status_code == 200
    server.wait_for(idle)


def poll_health(root: str, until: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(base_url=root, timeout=10) as http:
        while not until.is_set():
            start = time.perf_counter()
            assert http.get("/health").status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.02)


def test_health_answers_while_a_huge_prompt_is_handled(serve):
    server = serve(max_body_bytes=16 << 20)
    words = "word " * (int(7.9e6) // 5)  # a 7.9 MB message
    latencies: list[float] = []
    done = threading.Event()
    poller = threading.Thread(target=poll_health, args=(server.root, done, latencies))
    poller.start()
    time.sleep(0.1)
    started = time.perf_counter()
    with httpx.Client(base_url=server.root, timeout=60) as http:
        r = http.post(CHAT, json={"model": MODEL, "messages": [{"role": "user", "content": words}]})
    took = time.perf_counter() - started
    time.sleep(0.1)
    done.set()
    poller.join(10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert took < 5, took
    assert latencies and max(latencies) < 1.0, max(latencies)
    server.wait_for(idle)
