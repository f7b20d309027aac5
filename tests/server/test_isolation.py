"""One bad call never harms another: refused before admission, failed alone inside a step,
its slot and KV returned, the engine still stepping, ``/health`` telling a broken engine."""

import logging
import threading

import httpx
import pytest

import astraea.engine.isolation
from astraea.server import app as app_module
from tests.server.conftest import MODEL, idle
from tests.server.test_overload import ended

CHAT = "/v1/chat/completions"
OK = {"model": MODEL, "messages": [{"role": "user", "content": "say:ok"}]}


def chat(http: httpx.Client, text: str, **extra) -> httpx.Response:
    return http.post(CHAT, json={**OK, "messages": [{"role": "user", "content": text}], **extra})


def assert_serving(server, http: httpx.Client) -> None:
    r = chat(http, "say:still here")
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "still here"
    assert http.get("/health").status_code == 200
    server.wait_for(idle)
    assert server.service.admission.count == 0


@pytest.fixture
def errors_logged(caplog):
    """Log records at ERROR or above from the server, so a test can count them."""
    caplog.set_level(logging.ERROR, logger="astraea")
    return lambda: [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_seed_torch_cannot_take_is_a_400_and_the_engine_keeps_serving(serve, errors_logged):
    server = serve()
    with httpx.Client(base_url=server.root, timeout=10) as http:
        r = chat(http, "say:x", temperature=1.0, seed=2**70)
        assert r.status_code == 400 and r.json()["error"]["param"] == "seed"
        assert "Overflow" not in r.text  # our message, not torch's
        r = http.post(
            "/v1/completions", json={"model": MODEL, "prompt": "a", "temperature": 1, "seed": 2**64}
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "seed"
        assert chat(http, "say:x", temperature=1.0, seed=-(2**63)).status_code == 200
        assert_serving(server, http)
    assert errors_logged() == []


@pytest.mark.parametrize("job_id", ["job\n€", "a\r\nb", "nul\x00", "é", " lead", "tab\tin"])
def test_job_ids_that_cannot_be_a_header_are_refused_before_admission(serve, job_id):
    server = serve(max_queue=2)
    with httpx.Client(base_url=server.root, timeout=10) as http:
        for _ in range(3):  # more than --max-queue: a leaked slot would turn into 429
            r = chat(http, "say:x", stream=True, astraea_job_id=job_id)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["param"] == "astraea_job_id"
        assert_serving(server, http)


def test_a_failure_after_admission_returns_the_slot_and_the_kv(serve, monkeypatch):
    server = serve(max_queue=1)
    real = app_module.EventStream
    broken = [True]

    def stream(*args, **kw):
        if broken[0]:
            broken[0] = False
            raise RuntimeError("the stream could not be built")
        return real(*args, **kw)

    monkeypatch.setattr(app_module, "EventStream", stream)
    with httpx.Client(base_url=server.root, timeout=10) as http:
        r = chat(http, "say:x", stream=True)
        assert r.status_code == 500 and r.json()["error"]["code"] == "server_error"
        server.wait_for(idle)
        assert server.service.admission.count == 0
        with http.stream("POST", CHAT, json={**OK, "stream": True}) as r:
            assert r.status_code == 200 and "data: [DONE]" in r.read().decode()
        assert_serving(server, http)


def run_together(http: httpx.Client, bodies: list[dict]) -> list[httpx.Response]:
    """Send the bodies at once (so they share engine steps); the answers in order."""
    out: list = [None] * len(bodies)

    def send(i: int) -> None:
        out[i] = http.post(CHAT, json=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def body(text: str, **extra) -> dict:
    return {**OK, "messages": [{"role": "user", "content": text}], **extra}


def test_a_sequence_whose_forward_pass_fails_fails_its_call_alone(serve, monkeypatch):
    server = serve(delay=0.05)
    runner = server.engine.runner
    real = runner.compute_logits
    poison = [*b"say:boom"]

    def compute(plan, token_ids, step=0):
        for seq in plan.seqs:
            ids = list(token_ids[seq.job_id])
            if any(ids[i : i + len(poison)] == poison for i in range(len(ids))):
                raise RuntimeError("this sequence breaks the model")
        return real(plan, token_ids, step)

    monkeypatch.setattr(runner, "compute_logits", compute)
    with httpx.Client(base_url=server.root, timeout=30) as http:
        bad, good = run_together(http, [body("say:boom"), body("say:fine fine fine")])
        assert bad.status_code == 500 and bad.json()["error"]["code"] == "engine_error"
        assert good.status_code == 200, good.text
        assert good.json()["choices"][0]["message"]["content"] == "fine fine fine"
        assert_serving(server, http)
    assert ended(server, "failed") == 1


def test_a_call_whose_sampling_fails_fails_alone(serve, monkeypatch):
    server = serve(delay=0.05)
    real = astraea.engine.isolation.sample

    def sample(logits, params, generators):
        if any(p.seed == 13 for p in params):
            raise RuntimeError("this draw breaks")
        return real(logits, params, generators)

    monkeypatch.setattr(astraea.engine.isolation, "sample", sample)
    with httpx.Client(base_url=server.root, timeout=30) as http:
        bad, good = run_together(
            http, [body("say:x", temperature=1.0, seed=13), body("say:fine fine fine")]
        )
        assert bad.status_code == 500 and bad.json()["error"]["code"] == "engine_error"
        assert good.status_code == 200 and good.json()["choices"][0]["message"]["content"] == (
            "fine fine fine"
        )
        assert_serving(server, http)


def test_health_reports_an_engine_that_cannot_step_and_the_log_stays_short(
    serve, monkeypatch, errors_logged
):
    server = serve()
    pool = server.engine.runner.pool

    def broken(swap_out, swap_in):
        raise RuntimeError("the KV pool is gone")

    with httpx.Client(base_url=server.root, timeout=10) as http:
        monkeypatch.setattr(pool, "apply", broken)
        for _ in range(5):
            r = chat(http, "say:x")
            assert r.status_code == 500 and r.json()["error"]["code"] == "engine_error"
        health = http.get("/health")
        assert health.status_code == 503 and health.json()["error"]["code"] == "engine_unhealthy"
        snap = server.wait_for(idle)  # nothing half-run is left to spin on
        steps = snap["steps"]
        assert server.snapshot()["steps"] == steps
        assert len(errors_logged()) <= 2  # the first failure with its traceback, not one a step
        monkeypatch.undo()
        assert_serving(server, http)  # one good step and the engine is healthy again


def test_edge_values_are_served_or_refused_never_a_500(serve, errors_logged):
    server = serve()
    deep = "[" * 1500  # past json's recursion limit
    history = [
        {"role": "user", "content": "say:x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": deep}}],
        },
        {"role": "tool", "content": "say:done", "tool_call_id": "1"},
    ]
    with httpx.Client(base_url=server.root, timeout=10) as http:
        r = chat(http, "say:tiny", temperature=5e-324, seed=1)  # greedy, not an inf softmax
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "tiny"
        r = chat(http, "say:tiny", temperature=1.0, top_p=5e-324)  # keeps the top token
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "tiny"
        r = http.post(CHAT, json={**OK, "messages": history})
        assert r.status_code == 200, r.text
        assert_serving(server, http)
    assert errors_logged() == []


def test_a_model_whose_every_forward_pass_fails_makes_health_fail(serve, monkeypatch):
    server = serve()

    def broken(plan, token_ids, step=0):
        raise RuntimeError("the weights are gone")

    with httpx.Client(base_url=server.root, timeout=10) as http:
        monkeypatch.setattr(server.engine.runner, "compute_logits", broken)
        for _ in range(3):
            assert chat(http, "say:x").status_code == 500
        assert http.get("/health").json()["error"]["code"] == "engine_unhealthy"
        monkeypatch.undo()
        assert_serving(server, http)
