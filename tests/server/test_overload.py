"""Clients that leave, floods, busy jobs and tools that never return: KV comes back at once
(or at the TTL), overload is a 429, and the server keeps serving."""

import threading
import time

import httpx
import openai
import pytest

from tests.server.conftest import MODEL, idle
from tests.server.test_chat import CALL_TEXT, TOOLS, client, user

CHAT = "/v1/chat/completions"
LONG = {"model": MODEL, "messages": [user("ramble")], "max_tokens": 400, "ignore_eos": True}


def ended(server, reason: str) -> float:
    text = httpx.get(server.root + "/metrics").text
    line = f'astraea_jobs_ended_total{{reason="{reason}"}} '
    return float(next((x.split()[-1] for x in text.splitlines() if x.startswith(line)), 0))


def test_disconnect_mid_stream_frees_the_kv_at_once(serve):
    server = serve(delay=0.02)
    with (
        httpx.Client(base_url=server.root, timeout=10) as http,
        http.stream("POST", CHAT, json={**LONG, "stream": True}) as response,
    ):
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]  # the role chunk and a few tokens
        assert all(g.startswith("data: ") or not g for g in got)
        snap = server.snapshot()
        assert snap["running"] == 1 and snap["device_free"] < snap["device_blocks"]
    snap = server.wait_for(idle, timeout=3)
    assert snap["steps"] < 100  # aborted long before its 400 tokens
    assert ended(server, "aborted") == 1


def test_disconnect_while_waiting_for_a_whole_answer(serve):
    server = serve(delay=0.02)
    try:
        httpx.post(server.root + CHAT, json=LONG, timeout=0.5)
    except httpx.ReadTimeout:
        pass
    else:
        raise AssertionError("the answer should take longer than the client waits")
    snap = server.wait_for(idle, timeout=3)
    assert snap["steps"] < 100 and ended(server, "aborted") == 1


def test_a_client_that_leaves_before_its_first_token_frees_its_queue_place(serve):
    server = serve(delay=0.6, max_queue=1)
    for _ in range(2):  # the second would get 429 if the first still held the place
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.root + CHAT, json={**LONG, "stream": True}, timeout=0.2)
        server.wait_for(idle, timeout=3)
    assert server.service.admission.count == 0


def test_flood_gets_429_with_retry_after_and_then_service_resumes(serve):
    server = serve(delay=0.3, max_queue=2)
    statuses: list[tuple[int, str | None]] = []

    def one() -> None:
        body = {**LONG, "max_tokens": 2}
        r = httpx.post(server.root + CHAT, json=body, timeout=30)
        statuses.append((r.status_code, r.headers.get("retry-after")))

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(code for code, _ in statuses)
    assert codes.count(429) >= 1 and codes.count(200) >= 2 and set(codes) == {200, 429}
    assert all(after == "1" for code, after in statuses if code == 429)
    server.wait_for(idle)
    api = client(server)
    assert api.chat.completions.create(model=MODEL, messages=[user("say:back")]).choices
    text = httpx.get(server.root + "/metrics").text
    assert 'astraea_requests_total{endpoint="/v1/chat/completions",status="429"}' in text


def test_a_named_job_with_a_call_in_flight_is_busy(serve):
    server = serve(delay=0.02)
    headers = {"X-Astraea-Job-Id": "dup"}
    with (
        httpx.Client(base_url=server.root, timeout=10) as http,
        http.stream("POST", CHAT, json={**LONG, "stream": True}, headers=headers) as first,
    ):
        next(first.iter_lines())
        second = http.post(CHAT, json=LONG, headers=headers)
        assert second.status_code == 409 and second.json()["error"]["code"] == "job_busy"
    server.wait_for(idle, timeout=3)


def test_ttl_reclaims_a_job_whose_tool_never_returns(serve):
    server = serve(job_ttl=0.3)
    api = client(server)
    messages = [user("say:" + CALL_TEXT)]
    headers = {"X-Astraea-Job-Id": "forgotten"}
    first = api.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, extra_headers=headers
    )
    assert first.choices[0].finish_reason == "tool_calls"
    assert server.snapshot()["tool_wait"] == {"preserved": 1}
    start = time.monotonic()
    server.wait_for(idle, timeout=3)
    assert time.monotonic() - start < 2 and ended(server, "ttl") == 1
    message = first.choices[0].message
    messages += [
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "say:late"},
    ]
    late = api.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, extra_headers=headers
    )
    assert late.choices[0].message.content == "late"  # served anew from the whole history
    assert late.usage.prompt_tokens_details.cached_tokens == 0
    server.wait_for(idle)


def test_openai_client_sees_rate_limit_errors(serve):
    server = serve(delay=0.3, max_queue=1)
    api = client(server)
    results: list[object] = []

    def one() -> None:
        try:
            results.append(api.chat.completions.create(model=MODEL, messages=[user("say:x")]))
        except openai.RateLimitError as exc:
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any(isinstance(r, openai.RateLimitError) for r in results)
    server.wait_for(idle)
