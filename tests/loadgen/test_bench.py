"""``astraea bench`` against our real server (tiny random Llama, byte tokenizer)."""

from __future__ import annotations

import json
import socket

import pytest

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.loadgen import BenchOptions, run_bench
from astraea.loadgen.client import _body
from astraea.workloads.trace import write_trace
from tests.fakes import run_cli
from tests.server.conftest import MODEL, idle


def agent_jobs(n: int = 4) -> list[JobSpec]:
    jobs = []
    for i in range(n):
        calls = 2 + i % 2
        segments = tuple(
            Segment(12 + 3 * k, 5 + k, ToolCall(f"tool{k}", 0.05) if k < calls - 1 else None)
            for k in range(calls)
        )
        jobs.append(JobSpec(f"job{i}", 0.05 * i, "agent", segments))
    return jobs


def test_every_job_runs_its_calls_in_order_on_its_kept_context(serve):
    server = serve()
    specs = agent_jobs()
    report = run_bench(specs, BenchOptions(server.url, MODEL))
    summary = report.summary
    assert summary["completed"] == len(specs) and summary["failed"] == 0
    assert summary["avg_tpot"] > 0 and summary["p99_tpot"] is not None
    assert summary["avg_itl"] > 0 and summary["p99_itl"] >= summary["avg_itl"] * 0.5
    for spec, job in zip(specs, sorted(report.jobs, key=lambda j: j.arrival), strict=True):
        assert [c.index for c in job.calls] == list(range(len(spec.segments)))
        assert [c.completion_tokens for c in job.calls] == [s.output_tokens for s in spec.segments]
        assert all(0 < len(c.itl) < c.completion_tokens for c in job.calls)  # streamed
        # the continuation was recognised: everything sent before is the job's context
        assert all(c.cached_tokens for c in job.calls[1:])
        assert job.jct is not None and job.jct >= 0.05 * (len(spec.segments) - 1)
        sends = [c.sent for c in job.calls]
        assert sends == sorted(sends) and sends[0] >= spec.arrival - 0.01
    server.wait_for(idle)  # every job ended, every block free


def test_without_hints_the_server_sees_separate_conversations(serve):
    server = serve()
    report = run_bench(agent_jobs(2), BenchOptions(server.url, MODEL, job_hints=False))
    assert report.summary["completed"] == 2
    server.wait_for(idle)


def test_request_body_forces_lengths_and_carries_hints():
    spec = agent_jobs(1)[0]
    options = BenchOptions("http://x/v1", "m", token_scale=0.5, tool_latency_hints=True)
    body = _body(spec, 0, False, [{"role": "user", "content": "hi"}], options)
    assert body["max_tokens"] == body["min_tokens"] == 2  # round(5 * 0.5)
    assert body["ignore_eos"] is True and body["stream"] is True
    assert body["astraea_last"] is False and body["astraea_tool"] == "tool0"
    assert body["astraea_tool_latency"] == pytest.approx(0.05)
    plain = _body(
        spec,
        1,
        True,
        [],
        BenchOptions("http://x/v1", "m", False, job_hints=False, force_lengths=False),
    )
    assert "min_tokens" not in plain and not any(k.startswith("astraea") for k in plain)
    capped = BenchOptions("http://x/v1", "m", max_call_tokens=3)
    assert capped.tokens(100) == 3 and capped.tokens(2) == 2
    with pytest.raises(ValueError):
        BenchOptions("http://x/v1", "m", token_scale=0)


def test_cli_writes_json_and_plot(serve, tmp_path, capsys):
    server = serve()
    trace = tmp_path / "jobs.jsonl"
    write_trace(agent_jobs(3), trace)
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    code, stdout, _ = run_cli(
        [
            "bench",
            "--base-url",
            server.url,
            "--trace",
            str(trace),
            "--json",
            str(out),
            "--plot",
            str(plot),
            "--label",
            "ours",
        ],
        capsys,
    )
    assert code == 0, stdout
    record = json.loads(out.read_text())
    assert record["summary"]["completed"] == 3 and record["summary"]["label"] == "ours"
    assert record["command"].startswith("astraea bench")
    assert plot.stat().st_size > 1000


def test_cli_unreachable_server_is_one_line_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    code, _, stderr = run_cli(
        ["bench", "--base-url", f"http://127.0.0.1:{port}/v1", "--jobs", "1"], capsys
    )
    assert code == 2
    assert stderr.startswith("astraea: error: cannot list models") and stderr.count("\n") == 1


def test_cli_reports_failed_jobs(serve, tmp_path, capsys):
    server = serve()
    trace = tmp_path / "jobs.jsonl"
    write_trace(agent_jobs(1), trace)
    code, _, stderr = run_cli(
        ["bench", "--base-url", server.url, "--model", "nope", "--trace", str(trace)], capsys
    )
    assert code == 2 and "1 of 1 jobs failed" in stderr and "404" in stderr
