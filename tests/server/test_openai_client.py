"""The unmodified ``openai`` client on the new fields: logprobs (whole and streamed, chat and
completions), structured outputs (``response_format``, ``parse`` with a pydantic model, vLLM's
``guided_choice``) and ``tool_choice: "required"`` enforced by the grammar."""

import json
import math

import pydantic
import pytest

from tests.server.conftest import MODEL, idle

pytest.importorskip("llguidance")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def scripted(text):
    """A completion prompt the echo model answers with ``text`` (conftest's script)."""
    return f"say:{text}<|im_end|>\n<|im_start|>assistant\n"


def user(text):
    return [{"role": "user", "content": text}]


def test_chat_logprobs_whole_and_streamed(serve):
    server = serve()
    api = server.openai()
    out = api.chat.completions.create(
        model=MODEL, messages=user("say:héllo"), logprobs=True, top_logprobs=2
    )
    choice = out.choices[0]
    entries = choice.logprobs.content
    assert len(entries) == out.usage.completion_tokens
    assert bytes(b for e in entries[:-1] for b in e.bytes).decode() == choice.message.content
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 2 for e in entries)
    assert all(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob for e in entries)
    stream = api.chat.completions.create(
        model=MODEL, messages=user("say:héllo"), logprobs=True, stream=True
    )
    streamed = [
        e
        for c in stream
        if c.choices and c.choices[0].logprobs
        for e in c.choices[0].logprobs.content
    ]
    assert [e.bytes for e in streamed] == [e.bytes for e in entries]
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in entries])
    plain = api.chat.completions.create(model=MODEL, messages=user("say:x"))
    assert plain.choices[0].logprobs is None
    server.wait_for(idle)


def test_completion_logprobs(serve):
    server = serve()
    api = server.openai()
    out = api.completions.create(model=MODEL, prompt=scripted("abc"), logprobs=1, max_tokens=3)
    lp = out.choices[0].logprobs
    assert "".join(lp.tokens) == out.choices[0].text == "abc"
    assert lp.text_offset == [0, 1, 2] and all(len(t) == 1 for t in lp.top_logprobs)
    assert all(math.isfinite(v) and v <= 0 for v in lp.token_logprobs)
    stream = api.completions.create(
        model=MODEL, prompt=scripted("abc"), logprobs=0, max_tokens=3, stream=True
    )
    tokens = [t for c in stream if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    assert "".join(tokens) == "abc"
    server.wait_for(idle)


class Point(pydantic.BaseModel):
    x: int
    y: int


def test_response_format_and_parse(serve):
    server = serve()
    api = server.openai()
    answer = '{"x": 1, "y": 2}'
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": Point.model_json_schema()}}
    out = api.chat.completions.create(
        model=MODEL, messages=user("say:" + answer), response_format=fmt
    )
    assert json.loads(out.choices[0].message.content) == {"x": 1, "y": 2}
    parsed = api.chat.completions.parse(
        model=MODEL, messages=user("say:" + answer), response_format=Point
    )
    assert parsed.choices[0].message.parsed == Point(x=1, y=2)
    # the scripted model wants to write "hello"; the grammar allows only the choices
    choice = api.chat.completions.create(
        model=MODEL, messages=user("say:hello"), extra_body={"guided_choice": ["yes", "no"]}
    )
    assert choice.choices[0].message.content in ("yes", "no")
    text = api.completions.create(
        model=MODEL, prompt=scripted("42"), extra_body={"structured_outputs": {"regex": "[0-9]+"}}
    )
    assert text.choices[0].text == "42"
    server.wait_for(idle)


def test_structural_tag(serve):
    """vLLM's structural tag: text is free until a trigger, then the structure it begins
    (JSON valid for its schema, then its end); as response_format or structured_outputs."""
    server = serve()
    api = server.openai()
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tag = {
        "type": "structural_tag",
        "structures": [{"begin": "<function=get_weather>", "schema": schema, "end": "</function>"}],
        "triggers": ["<function="],
    }
    # the scripted model calls with a wrong argument name; the grammar writes "city"
    script = 'say:Let me check. <function=get_weather>{"town": "Oslo"}</function>'
    out = api.chat.completions.create(model=MODEL, messages=user(script), response_format=tag)
    content = out.choices[0].message.content
    head, _, rest = content.partition("<function=get_weather>")
    assert head == "Let me check. " and rest.endswith("</function>")
    assert set(json.loads(rest[: -len("</function>")])) == {"city"}
    plain = api.completions.create(
        model=MODEL,
        prompt=scripted("no call here"),
        extra_body={"structured_outputs": {"structural_tag": json.dumps(tag)}},
    )
    assert plain.choices[0].text == "no call here"
    server.wait_for(idle)


def test_required_tool_call_by_grammar_whole_and_streamed(serve):
    server = serve()
    api = server.openai()
    script = 'say:<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    for stream in (False, True):
        kwargs = dict(
            model=MODEL,
            messages=user(script),
            tools=TOOLS,
            tool_choice="required",
            parallel_tool_calls=False,
            extra_body={"astraea_last": True},
        )
        if stream:
            chunks = list(api.chat.completions.create(**kwargs, stream=True))
            calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or ()]
            assert chunks[-1].choices[0].finish_reason == "tool_calls"
        else:
            out = api.chat.completions.create(**kwargs)
            calls = out.choices[0].message.tool_calls
            assert out.choices[0].finish_reason == "tool_calls"
        [call] = calls
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Oslo"}
    server.wait_for(idle)
