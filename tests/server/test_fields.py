"""Every OpenAI and common vLLM generation field, one by one: it reaches the engine as the
option it names, or the request is refused with a 400 that names it (never ignored)."""

import httpx
import pytest

from tests.server.conftest import MODEL, idle

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
OK = {"model": MODEL, "messages": [{"role": "user", "content": "say:ok"}]}
TEXT = {"model": MODEL, "prompt": "say:ok"}

HONOURED = [  # (path, extra fields, SamplingParams attribute, expected value)
    (CHAT, {"presence_penalty": 0.5}, "presence_penalty", 0.5),
    (CHAT, {"frequency_penalty": -1.5}, "frequency_penalty", -1.5),
    (CHAT, {"repetition_penalty": 1.3}, "repetition_penalty", 1.3),
    (CHAT, {"top_k": 5}, "top_k", 5),
    (CHAT, {"top_k": -1}, "top_k", 0),
    (CHAT, {"min_p": 0.2}, "min_p", 0.2),
    (CHAT, {"logit_bias": {"65": 3, "66": -100}}, "logit_bias", ((65, 3.0), (66, -100.0))),
    (CHAT, {"logprobs": True}, "logprobs", 0),
    (CHAT, {"logprobs": True, "top_logprobs": 4}, "logprobs", 4),
    (CHAT, {"logprobs": False}, "logprobs", None),
    (CHAT, {"seed": 3, "temperature": 0.7, "top_p": 0.9}, "seed", 3),
    (CHAT, {"n": 1}, "max_tokens", 512),
    (CHAT, {"max_completion_tokens": 7}, "max_tokens", 7),
    (CHAT, {"stop": "x"}, "stop", ("x",)),
    (CHAT, {"min_tokens": 2, "ignore_eos": True}, "ignore_eos", True),
    (CHAT, {"user": "u1", "metadata": {"a": "b"}, "store": False}, "max_tokens", 512),
    (CHAT, {"service_tier": "auto", "prompt_cache_key": "k"}, "max_tokens", 512),
    (CHAT, {"stream": True, "stream_options": {"include_usage": True}}, "max_tokens", 512),
    (COMPLETIONS, {"logprobs": 2}, "logprobs", 2),
    (COMPLETIONS, {"best_of": 1, "echo": False}, "max_tokens", 512),
    (COMPLETIONS, {"presence_penalty": 1, "top_k": 3}, "top_k", 3),
]
REFUSED = [  # (path, extra fields, param named in the 400)
    (CHAT, {"n": 2}, "n"),
    (CHAT, {"presence_penalty": 2.5}, "presence_penalty"),
    (CHAT, {"frequency_penalty": -3}, "frequency_penalty"),
    (CHAT, {"repetition_penalty": 0}, "repetition_penalty"),
    (CHAT, {"top_k": -2}, "top_k"),
    (CHAT, {"min_p": 1.5}, "min_p"),
    (CHAT, {"logit_bias": {"999": 1}}, "logit_bias"),
    (CHAT, {"logit_bias": {"abc": 1}}, "logit_bias"),
    (CHAT, {"logit_bias": {"65": 101}}, "logit_bias.65"),
    (CHAT, {"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    (CHAT, {"top_logprobs": 2}, None),  # needs logprobs: true
    (CHAT, {"stream_options": {"include_usage": True}}, None),  # needs stream
    (CHAT, {"audio": {"voice": "x", "format": "wav"}}, "audio"),
    (CHAT, {"modalities": ["text", "audio"]}, "modalities"),
    (CHAT, {"functions": [{"name": "f"}]}, "functions"),
    (CHAT, {"function_call": "auto"}, "function_call"),
    (CHAT, {"prediction": {"type": "content", "content": "x"}}, "prediction"),
    (CHAT, {"web_search_options": {}}, "web_search_options"),
    (CHAT, {"reasoning_effort": "low"}, "reasoning_effort"),
    (CHAT, {"verbosity": "low"}, "verbosity"),
    (CHAT, {"store": True}, "store"),
    (CHAT, {"tool_choice": "required"}, None),  # no tools
    (CHAT, {"response_format": {"type": "xml"}}, "response_format.type"),
    (CHAT, {"response_format": {"type": "structural_tag", "format": {}}}, "response_format.format"),
    (CHAT, {"response_format": {"type": "structural_tag"}}, "response_format"),  # no structures
    (
        CHAT,
        {
            "response_format": {
                "type": "structural_tag",
                "structures": [{"begin": "<f>", "schema": {}, "end": "</f>"}],
                "triggers": ["<g"],
            }
        },
        "response_format.structures.0.begin",
    ),
    (
        COMPLETIONS,
        {"structured_outputs": {"structural_tag": "{not json"}},
        "structured_outputs.structural_tag",
    ),
    (CHAT, {"response_format": {"type": "json_schema"}}, None),  # no schema
    (CHAT, {"response_format": {"type": "json_object"}, "guided_regex": "a+"}, None),
    (CHAT, {"response_format": {"type": "json_object"}, "min_tokens": 1}, "min_tokens"),
    (CHAT, {"guided_json": "{not json"}, "guided_json"),
    (CHAT, {"guided_json": {"type": "nonsense"}}, "guided_json"),
    (CHAT, {"guided_regex": "(unclosed"}, "guided_regex"),
    (CHAT, {"structured_outputs": {"regex": "a", "choice": ["a"]}}, None),
    (COMPLETIONS, {"best_of": 2}, "best_of"),
    (COMPLETIONS, {"echo": True}, "echo"),
    (COMPLETIONS, {"suffix": "x"}, "suffix"),
    (COMPLETIONS, {"logprobs": 21}, "logprobs"),
    (COMPLETIONS, {"n": 3}, "n"),
]


@pytest.fixture
def spied(serve):
    """A server whose engine records the SamplingParams of every call it takes."""
    server = serve()
    seen = []
    submit = server.engine.submit

    def spy(*args, **kwargs):
        request = submit(*args, **kwargs)
        seen.append(request.params)
        return request

    server.engine.submit = spy
    return server, seen


def test_each_honoured_field_reaches_the_engine(spied):
    server, seen = spied
    with httpx.Client(base_url=server.root, timeout=30) as http:
        for path, extra, attr, value in HONOURED:
            base = OK if path == CHAT else TEXT
            r = http.post(path, json={**base, **extra})
            assert r.status_code == 200, (extra, r.text)
            assert getattr(seen[-1], attr) == value, (extra, seen[-1])
    server.wait_for(idle)


def test_each_refused_field_is_a_400_naming_it(spied):
    server, seen = spied
    with httpx.Client(base_url=server.root, timeout=30) as http:
        for path, extra, param in REFUSED:
            base = OK if path == CHAT else TEXT
            r = http.post(path, json={**base, **extra})
            assert r.status_code == 400, (extra, r.text)
            error = r.json()["error"]
            assert error["type"] == "invalid_request_error" and error["message"]
            assert param is None or error["param"] == param, (extra, error)
        assert not seen  # nothing refused reached the engine
        assert http.post(CHAT, json=OK).json()["choices"][0]["message"]["content"] == "ok"
    server.wait_for(idle)


def test_repetition_penalty_counts_the_prompt(spied):
    server, seen = spied
    with httpx.Client(base_url=server.root, timeout=30) as http:
        http.post(COMPLETIONS, json={**TEXT, "repetition_penalty": 1.2}).raise_for_status()
    assert seen[-1].prompt_ids == tuple(b"say:ok")
    server.wait_for(idle)
