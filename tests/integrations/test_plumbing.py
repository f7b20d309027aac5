"""The plugin's vLLM-free plumbing: hint middleware, settings, launch command, trace, import."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import astraea.integrations.vllm as plugin
from astraea.integrations.hints import AstraeaHintsMiddleware, rewrite_body
from astraea.integrations.launch import vllm_command, vllm_env, vllm_unavailable
from astraea.integrations.settings import CPU_SMOLLM2, PluginSettings
from astraea.integrations.trace import DecisionTrace, read_trace


def test_rewrite_body_moves_hints_into_vllm_xargs() -> None:
    body = {"model": "m", "astraea_last": False, "astraea_tool": "search", "vllm_xargs": {"k": 1}}
    out = json.loads(rewrite_body(json.dumps(body).encode(), "job-7") or b"")
    assert out == {
        "model": "m",
        "vllm_xargs": {
            "k": 1,
            "astraea_last": 0,
            "astraea_tool": "search",
            "astraea_job_id": "job-7",
        },
    }
    assert rewrite_body(b'{"model": "m"}', None) is None
    assert rewrite_body(b"[1]", "j") is None and rewrite_body(b"\xff", "j") is None
    keep = json.loads(
        rewrite_body(b'{"astraea_job_id": "b", "vllm_xargs": {"astraea_job_id": "x"}}', None) or b""
    )
    assert keep["vllm_xargs"] == {"astraea_job_id": "x"}  # the client's own xargs win


def _run(middleware: AstraeaHintsMiddleware, scope: dict[str, Any], messages: list[dict]) -> tuple:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["scope"] = scope
        seen["messages"] = [await receive(), await receive()]

    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        return None

    middleware.app = app
    asyncio.run(middleware(scope, receive, send))
    return seen["scope"], seen["messages"]


def test_middleware_rewrites_chunked_post_bodies_and_passes_the_rest() -> None:
    mw = AstraeaHintsMiddleware(lambda *a: None)  # type: ignore[arg-type,return-value]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"x-astraea-job-id", b"J"), (b"content-length", b"30")],
    }
    body = json.dumps({"model": "m", "astraea_last": True}).encode()
    chunks = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
        {"type": "http.disconnect"},
    ]
    new_scope, (first, later) = _run(mw, scope, chunks)
    sent = json.loads(first["body"])
    assert sent["vllm_xargs"] == {"astraea_last": 1, "astraea_job_id": "J"}
    assert (b"content-length", str(len(first["body"])).encode()) in new_scope["headers"]
    assert later == {"type": "http.disconnect"}  # vLLM still sees the client leave
    get = dict(scope, method="GET")
    untouched, (msg, _) = _run(mw, get, [{"type": "http.request", "body": b"x"}, {}])
    assert untouched is get and msg["body"] == b"x"


def test_settings_round_trip_through_the_environment() -> None:
    settings = PluginSettings(
        policy="astraea", policy_params={"watermark": 0.5}, trace_path="/t.jsonl", pin_ttl=3.0
    )
    assert PluginSettings.from_env(settings.to_env()) == settings
    assert PluginSettings.from_env({}) == PluginSettings()
    assert PluginSettings().service_model(2048) is CPU_SMOLLM2
    assert PluginSettings(profile="llama2-7b-a100").service_model(512).chunk_tokens == 512
    with pytest.raises(ValueError, match="JSON object"):
        PluginSettings.from_env({"ASTRAEA_VLLM_POLICY_PARAMS": "[1]"})
    with pytest.raises(ValueError, match="PIN_TTL"):
        PluginSettings(pin_ttl=0)


def test_launch_command_and_environment(tmp_path: Path) -> None:
    cmd = vllm_command(Path("/py"), tmp_path, served_name="m", port=9, extra=["--enforce-eager"])
    assert cmd[:3] == ["/py", "-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--scheduler-cls") + 1] == plugin.SCHEDULER_CLS
    assert cmd[cmd.index("--middleware") + 1] == plugin.MIDDLEWARE
    assert cmd[-1] == "--enforce-eager"
    assert "--scheduler-cls" not in vllm_command(
        Path("/py"), tmp_path, served_name="m", plugin=False
    )
    env = vllm_env(PluginSettings(trace_path="/x"), threads=2)
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1" and env["ASTRAEA_VLLM_TRACE"] == "/x"
    assert "not found" in (vllm_unavailable(tmp_path / "nope") or "")


def test_trace_writes_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "trace.jsonl"
    trace = DecisionTrace(path)
    trace.write(1.5, "pin", job="A", blocks=3)
    trace.close()
    with path.open("a") as f:
        f.write('{"torn": ')
    assert read_trace(path) == [{"t": 1.5, "event": "pin", "job": "A", "blocks": 3}]
    DecisionTrace(None).write(0.0, "ignored")  # disabled: a no-op


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_plugin_module_imports_without_vllm_and_says_what_is_missing() -> None:
    assert plugin.SCHEDULER_CLS.endswith("AstraeaScheduler")
    with pytest.raises(ImportError, match=r"needs vLLM 0\.32\.0"):
        _ = plugin.AstraeaScheduler
    with pytest.raises(AttributeError):
        _ = plugin.Nothing
    assert "needs vLLM" in (vllm_unavailable(Path(sys.executable)) or "")
