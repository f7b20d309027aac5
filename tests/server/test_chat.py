"""Chat and completions through the real ``openai`` client against a live server: answers,
streams, tool calls, and jobs continued by header, body field or history."""

import json

import httpx
import openai
import pytest

from tests.server.conftest import MODEL, idle

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALL_TEXT = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def client(server, **kw) -> openai.OpenAI:
    return server.openai(**kw)


def user(text):
    return {"role": "user", "content": text}


def test_chat_answer_and_stream(serve):
    server = serve()
    api = client(server)
    out = api.chat.completions.create(model=MODEL, messages=[user("say:hello there")])
    assert out.choices[0].message.content == "hello there"
    assert out.choices[0].finish_reason == "stop" and out.object == "chat.completion"
    assert out.usage.completion_tokens == len("hello there") + 1  # + <|im_end|>
    job = out.model_extra["astraea_job_id"]
    assert job.startswith("job-")
    server.wait_for(idle)  # an answer without tool calls ended its job
    stream = api.chat.completions.create(
        model=MODEL,
        messages=[user("say:héllo wörld, stop HERE please")],
        stream=True,
        stop=["HERE"],
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "héllo wörld, stop "
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == len("héllo wörld, stop HERE".encode())
    short = api.chat.completions.create(model=MODEL, messages=[user("say:abcdef")], max_tokens=3)
    assert short.choices[0].message.content == "abc"
    assert short.choices[0].finish_reason == "length"
    server.wait_for(idle)


def test_tool_call_then_continuation_by_header_reuses_the_kv(serve):
    server = serve()
    api = client(server)
    messages = [user("say:" + CALL_TEXT)]
    headers = {"X-Astraea-Job-Id": "agent-7"}
    raw = api.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, tools=TOOLS, extra_headers=headers
    )
    assert raw.headers["X-Astraea-Job-Id"] == "agent-7"
    first = raw.parse()
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    snap = server.wait_for(lambda s: s["tool_wait"].get("preserved") == 1)
    assert snap["jobs"] == 1 and snap["device_free"] < snap["device_blocks"]
    job = server.engine.scheduler.jobs["agent-7"]
    assert job.segment.tool.name == "get_weather"  # the tool named: its latency category
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "say:Sunny."},
    ]
    second = api.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, extra_headers=headers
    )
    assert second.choices[0].message.content == "Sunny."
    assert second.usage.prompt_tokens_details.cached_tokens == first.usage.total_tokens
    assert second.usage.prompt_tokens > first.usage.total_tokens
    assert server.engine.scheduler.counters.recomputed_tokens == 0  # continued on kept KV
    server.wait_for(idle)  # final answer: the job ended


def test_continuation_by_body_field_and_automatic(serve):
    server = serve()
    api = client(server)
    for extra in ({"astraea_job_id": "body-job"}, {}):
        messages = [user("say:" + CALL_TEXT)]
        first = api.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, extra_body=extra
        )
        job = first.model_extra["astraea_job_id"]
        assert job == extra.get("astraea_job_id", job)
        message = first.choices[0].message
        messages += [
            message.model_dump(),  # as the SDK hands it back, nulls and all
            {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "say:done"},
        ]
        second = api.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, extra_body=extra
        )
        assert second.model_extra["astraea_job_id"] == job
        assert second.usage.prompt_tokens_details.cached_tokens > 0
        assert second.choices[0].message.content == "done"
    assert server.engine.scheduler.counters.recomputed_tokens == 0
    server.wait_for(idle)
    fresh = api.chat.completions.create(model=MODEL, messages=[user("say:x")], tools=TOOLS)
    assert fresh.usage.prompt_tokens_details.cached_tokens == 0


def test_tool_call_streams_whole_and_forced_tool_choice(serve):
    server = serve()
    api = client(server)
    stream = api.chat.completions.create(
        model=MODEL, messages=[user("say:Checking. " + CALL_TEXT)], tools=TOOLS, stream=True
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content == "Checking. "  # nothing of the call leaks as text
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or ()]
    assert [tc.function.name for tc in calls] == ["get_weather"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # tool_choice names the tool: the answer is made to start inside the call
    named = api.chat.completions.create(
        model=MODEL,
        messages=[user('say:<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}')],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        extra_body={"astraea_last": True},
    )
    [call] = named.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Rome"}
    none = api.chat.completions.create(
        model=MODEL, messages=[user("say:" + CALL_TEXT)], tools=TOOLS, tool_choice="none"
    )
    assert none.choices[0].message.content == CALL_TEXT and not none.choices[0].message.tool_calls
    server.wait_for(lambda s: s["jobs"] == 1)  # only the streamed call's job waits on its tool


def test_completions_text_ids_stream_and_named_jobs(serve):
    server = serve()
    api = client(server)
    forced = {"ignore_eos": True}
    out = api.completions.create(model=MODEL, prompt="abc", max_tokens=5, extra_body=forced)
    assert out.object == "text_completion" and out.usage.completion_tokens == 5
    assert out.choices[0].finish_reason == "length"
    ids = api.completions.create(model=MODEL, prompt=[97, 98, 99], max_tokens=5, extra_body=forced)
    assert ids.choices[0].text == out.choices[0].text  # same tokens, greedy
    parts = list(
        api.completions.create(
            model=MODEL, prompt="abc", max_tokens=5, stream=True, extra_body={"ignore_eos": True}
        )
    )
    assert "".join(p.choices[0].text for p in parts) == out.choices[0].text
    server.wait_for(idle)  # anonymous completions are one-call jobs
    body = {"astraea_job_id": "bench-1", "ignore_eos": True, "astraea_tool": "search"}
    one = api.completions.create(model=MODEL, prompt="hello", max_tokens=4, extra_body=body)
    assert server.engine.scheduler.jobs["bench-1"].segment.tool.name == "search"
    prompt = "hello" + one.choices[0].text + " tool result: 42\n"
    two = api.completions.create(
        model=MODEL, prompt=prompt, max_tokens=4, extra_body={**body, "astraea_last": True}
    )
    assert two.usage.prompt_tokens_details.cached_tokens == one.usage.total_tokens
    server.wait_for(idle)


def test_models_health_and_metrics(serve):
    server = serve()
    api = client(server)
    [card] = api.models.list().data
    assert card.id == MODEL and card.model_extra["max_model_len"] == 2048
    assert api.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("other")
    assert httpx.get(server.root + "/health").json() == {"status": "ok"}
    api.chat.completions.create(model=MODEL, messages=[user("say:" + CALL_TEXT)], tools=TOOLS)
    text = httpx.get(server.root + "/metrics").text
    for line in (
        'astraea_tool_wait_jobs{kv="preserved"} 1.0',
        'astraea_requests_total{endpoint="/v1/chat/completions",status="200"} 1.0',
        'astraea_kv_blocks{state="free",tier="host"} 32.0',
        'astraea_queue_length{level="0"} 0.0',
        "astraea_time_to_first_token_seconds_count 1.0",
        'astraea_time_to_first_token_seconds_bucket{le="0.001"}',  # vLLM's buckets
        'astraea_time_to_first_token_seconds_bucket{le="2560.0"} 1.0',
    ):
        assert line in text, line
    assert "astraea_job_completion_seconds_bucket" in text and "astraea_kv_actions" in text


def test_chat_answer_without_tool_calls_waits_on_the_named_tool(serve):
    """``astraea bench`` keeps a job open over plain answers and names its tool."""
    server = serve()
    api = client(server)
    body = {"astraea_last": False, "astraea_tool": "search", "ignore_eos": True}
    first = [user("say:ok")]
    answer = api.chat.completions.create(
        model=MODEL, messages=first, max_tokens=3, extra_body=body,
        extra_headers={"X-Astraea-Job-Id": "agent-1"},
    )  # fmt: skip
    assert server.engine.scheduler.jobs["agent-1"].segment.tool.name == "search"
    follow = [*first, {"role": "assistant", "content": answer.choices[0].message.content},
              user("say:done")]  # fmt: skip
    api.chat.completions.create(
        model=MODEL, messages=follow, max_tokens=3, extra_body={"astraea_last": True},
        extra_headers={"X-Astraea-Job-Id": "agent-1"},
    )  # fmt: skip
    server.wait_for(idle)


def test_a_streamed_answer_whose_tool_call_does_not_parse_is_sent_whole(serve):
    server = serve()
    api = client(server)
    broken = "let me see <tool_call>{not json}</tool_call>"
    ask = {"model": MODEL, "messages": [user("say:" + broken)], "tools": TOOLS}
    whole = api.chat.completions.create(**ask)
    assert whole.choices[0].message.content == broken
    assert whole.choices[0].finish_reason == "stop" and not whole.choices[0].message.tool_calls
    chunks = list(api.chat.completions.create(**ask, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == broken
    assert chunks[-1].choices[0].finish_reason == "stop"
