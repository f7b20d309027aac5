"""Per-job completion metrics and their aggregates.

JCT runs from a job's arrival to the end of its last segment, tool time included (what the
user waits). ``engine_time`` takes the job's own tool time out, leaving what the serving
system added; slowdown divides JCT by the job's JCT alone on the engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from astraea.core.job import Job


@dataclass(frozen=True, slots=True)
class JobMetrics:
    job_id: str
    category: str
    arrival: float
    finish: float
    jct: float
    tool_time: float
    engine_time: float
    waiting_time: float  # queued, over all segments
    ttft: float | None  # arrival to first generated token
    solo_jct: float | None
    slowdown: float | None
    preemptions: int
    recomputed_tokens: int
    generated_tokens: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def job_metrics(jobs: Iterable[Job], solo: Mapping[str, float] | None = None) -> list[JobMetrics]:
    out = []
    for job in jobs:
        if job.finish_time is None:
            raise ValueError(f"job {job.job_id} has not finished")
        jct = job.finish_time - job.arrival
        tool = job.spec.total_tool_time
        alone = solo.get(job.job_id) if solo else None
        out.append(
            JobMetrics(
                job_id=job.job_id,
                category=job.spec.category,
                arrival=job.arrival,
                finish=job.finish_time,
                jct=jct,
                tool_time=tool,
                engine_time=jct - tool,
                waiting_time=job.total_waiting_time,
                ttft=None if job.first_token_time is None else job.first_token_time - job.arrival,
                solo_jct=alone,
                slowdown=jct / alone if alone else None,
                preemptions=job.num_preemptions,
                recomputed_tokens=job.num_recomputed_tokens,
                generated_tokens=job.num_generated_total,
            )
        )
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarize_jobs(metrics: Sequence[JobMetrics]) -> dict[str, float]:
    """Aggregates over jobs: JCT avg/p50/p90/p99, engine time, slowdown, jobs/s, tokens/s."""
    if not metrics:
        raise ValueError("no finished jobs to summarize")
    jct = [m.jct for m in metrics]
    slowdown = [m.slowdown for m in metrics if m.slowdown is not None]
    ttft = [m.ttft for m in metrics if m.ttft is not None]
    span = max(m.finish for m in metrics) - min(m.arrival for m in metrics)
    tokens = sum(m.generated_tokens for m in metrics)
    return {
        "jobs": len(metrics),
        "avg_jct": _mean(jct),
        "p50_jct": percentile(jct, 50),
        "p90_jct": percentile(jct, 90),
        "p99_jct": percentile(jct, 99),
        "avg_engine_time": _mean([m.engine_time for m in metrics]),
        "avg_tool_time": _mean([m.tool_time for m in metrics]),
        "avg_waiting_time": _mean([m.waiting_time for m in metrics]),
        "avg_ttft": _mean(ttft),
        "avg_slowdown": _mean(slowdown),
        "p99_slowdown": percentile(slowdown, 99),
        "throughput_jobs_per_s": len(metrics) / span if span > 0 else math.nan,
        "throughput_tokens_per_s": tokens / span if span > 0 else math.nan,
        "preemptions": sum(m.preemptions for m in metrics),
        "recomputed_tokens": sum(m.recomputed_tokens for m in metrics),
    }
