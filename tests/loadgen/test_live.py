"""Our server benched in-process under several policies (tiny random Llama)."""

from __future__ import annotations

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.loadgen import BenchOptions
from astraea.loadgen.live import bench_policies
from tests.server.conftest import tiny_engine


def test_each_policy_runs_the_same_jobs_on_a_fresh_clean_server(tiny_model, tokenizer):
    specs = [
        JobSpec(f"j{i}", 0.02 * i, "agent", (Segment(10, 4, ToolCall("t", 0.02)), Segment(6, 3)))
        for i in range(3)
    ]
    started: list[str] = []
    done: list[str] = []
    reports = bench_policies(
        lambda p: tiny_engine(tiny_model, tokenizer, p),
        specs,
        ["vllm-fcfs", "astraea"],
        BenchOptions("", "tiny"),
        on_start=started.append,
        on_job_done=lambda record: done.append(record.job_id),
    )
    assert started == ["vllm-fcfs", "astraea"]
    assert [r.label for r in reports] == started
    assert sorted(done) == sorted([s.job_id for s in specs] * 2)
    for report in reports:
        assert report.summary["completed"] == 3
        assert all([c.completion_tokens for c in j.calls] == [4, 3] for j in report.jobs)
