"""End to end on the real SmolLM2-135M-Instruct: an agent loop through the ``openai`` client
(question, forced tool call, tool result, final answer) on kept KV, and a stream that equals
the whole answer."""

import json

import pytest

from astraea.engine.config import EngineConfig
from astraea.engine.engine import Engine
from astraea.server import ServerConfig, create_app
from tests.engine.conftest import smollm  # noqa: F401 (the session fixture)
from tests.server.conftest import LiveServer, idle
from tests.server.test_chat import TOOLS


@pytest.mark.slow
def test_smollm_agent_loop_stream_and_kv_reuse(smollm):  # noqa: F811
    config = EngineConfig(dtype="float32", block_size=16, num_gpu_blocks=128, num_threads=1)
    engine = Engine(smollm, config, check_integrity=True)
    app = create_app(engine, ServerConfig(served_model_name="smollm2"))
    with LiveServer(app) as server:
        api = server.openai()
        question = [{"role": "user", "content": "What is the capital of France?"}]
        answer = api.chat.completions.create(model="smollm2", messages=question, max_tokens=12)
        assert "Paris" in answer.choices[0].message.content
        stream = api.chat.completions.create(
            model="smollm2", messages=question, max_tokens=12, stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream)
        assert streamed == answer.choices[0].message.content
        server.wait_for(idle)

        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        call = api.chat.completions.create(
            model="smollm2",
            messages=messages,
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=24,
        )
        choice = call.choices[0]
        assert choice.finish_reason == "tool_calls", choice.message.content
        [tool_call] = choice.message.tool_calls
        assert tool_call.function.name == "get_weather"
        assert isinstance(json.loads(tool_call.function.arguments), dict)
        assert server.snapshot()["tool_wait"] == {"preserved": 1}
        messages += [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": tool_call.id, "content": "Sunny, 24 C"},
        ]
        final = api.chat.completions.create(
            model="smollm2", messages=messages, tools=TOOLS, max_tokens=24
        )
        assert final.choices[0].finish_reason in ("stop", "length")
        assert final.model_extra["astraea_job_id"] == call.model_extra["astraea_job_id"]
        assert final.usage.prompt_tokens_details.cached_tokens == call.usage.total_tokens
        assert engine.scheduler.counters.recomputed_tokens == 0
        server.wait_for(idle)


@pytest.mark.slow
def test_smollm_structured_outputs(smollm):  # noqa: F811
    """The real model under a JSON schema and a forced tool call (benchmarks/
    structured_targets.py runs 20 prompts of each)."""
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("llguidance")
    config = EngineConfig(dtype="float32", block_size=16, num_gpu_blocks=128, num_threads=1)
    engine = Engine(smollm, config, check_integrity=True)
    app = create_app(engine, ServerConfig(served_model_name="smollm2"))
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    penalty = {"repetition_penalty": 1.3}
    with LiveServer(app) as server:
        api = server.openai()
        text = "Extract the person as JSON: Alice, 34, lives in Paris."
        out = api.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": text}],
            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
            max_tokens=60,
            extra_body=penalty,
        )
        jsonschema.validate(json.loads(out.choices[0].message.content), schema)
        call = api.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "What's the weather in Paris?"}],
            tools=TOOLS,
            tool_choice="required",
            parallel_tool_calls=False,
            max_tokens=60,
            extra_body={**penalty, "astraea_last": True},
        )
        [tool_call] = call.choices[0].message.tool_calls
        assert tool_call.function.name == "get_weather"
        params = TOOLS[0]["function"]["parameters"]
        jsonschema.validate(json.loads(tool_call.function.arguments), params)
        server.wait_for(idle)
