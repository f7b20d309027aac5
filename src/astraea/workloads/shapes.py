"""Shape statistics of a workload (the table in docs/workloads.md).

``python -m astraea.workloads.shapes`` prints the table for every registered mix, from
1,000 jobs of seed 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from astraea.core.job import JobSpec


@dataclass(frozen=True, slots=True)
class Shape:
    """Means over jobs (tokens per job, calls per job) and over tool calls (tool time)."""

    jobs: int
    calls_per_job: float
    input_tokens_per_job: float  # all new input tokens of the job (prompt and tool results)
    output_tokens_per_job: float
    tokens_per_job: float  # final context, JobSpec.total_tokens
    first_prompt: float
    tool_time: float  # mean over tool calls (s)
    tool_time_p99: float
    tool_time_per_job: float  # s

    def row(self, name: str, split: str) -> str:
        return (
            f"| {name} | {split} | {self.calls_per_job:.1f} | {self.input_tokens_per_job:,.0f} | "
            f"{self.output_tokens_per_job:,.0f} | {self.tokens_per_job:,.0f} | "
            f"{self.first_prompt:,.0f} | {self.tool_time:.2f} | {self.tool_time_p99:.1f} | "
            f"{self.tool_time_per_job:.1f} |"
        )


HEADER = (
    "| mix | set | calls/job | input tok/job | output tok/job | total tok/job | first prompt "
    "| tool s (mean) | tool s (p99) | tool s/job |\n|---|---|---|---|---|---|---|---|---|---|"
)


def shape(jobs: list[JobSpec]) -> Shape:
    """The shape statistics of ``jobs`` (at least one job)."""
    if not jobs:
        raise ValueError("no jobs")
    tools = sorted(s.tool.latency for j in jobs for s in j.segments if s.tool is not None)
    p99 = tools[min(len(tools) - 1, int(0.99 * len(tools)))] if tools else 0.0
    return Shape(
        jobs=len(jobs),
        calls_per_job=statistics.fmean(len(j.segments) for j in jobs),
        input_tokens_per_job=statistics.fmean(
            sum(s.input_tokens for s in j.segments) for j in jobs
        ),
        output_tokens_per_job=statistics.fmean(
            sum(s.output_tokens for s in j.segments) for j in jobs
        ),
        tokens_per_job=statistics.fmean(j.total_tokens for j in jobs),
        first_prompt=statistics.fmean(j.segments[0].input_tokens for j in jobs),
        tool_time=statistics.fmean(tools) if tools else 0.0,
        tool_time_p99=p99,
        tool_time_per_job=statistics.fmean(j.total_tool_time for j in jobs),
    )


def table(num_jobs: int = 1000, seed: int = 0, jobs: dict[str, list[JobSpec]] | None = None) -> str:
    """The markdown table of every registered mix, tuning mixes first (``jobs``: already
    generated jobs by mix name, to reuse)."""
    from astraea.workloads.registry import (
        EVALUATION_MIXES,
        TUNING_MIXES,
        generate_workload,
    )

    rows = [HEADER]
    for split, names in (("tuning", TUNING_MIXES), ("evaluation", EVALUATION_MIXES)):
        for name in names:
            given = (jobs or {}).get(name)
            mix = given if given is not None else generate_workload(name, num_jobs, 1.0, seed)
            rows.append(shape(mix).row(name, split))
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
