"""Shared plumbing of the agent-kind generators: a chain of calls -> ``JobSpec``, and the
seeded arrival/content split every generator uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.workloads._dist import as_rng, split_streams
from astraea.workloads.arrivals import poisson_arrivals

# (rng, job_id, arrival) -> JobSpec
JobMaker = Callable[[random.Random, str, float], JobSpec]


def chain_job(
    job_id: str,
    arrival: float,
    category: str,
    inputs: Sequence[int],
    outputs: Sequence[int],
    tools: Sequence[ToolCall],
) -> JobSpec:
    """A job of ``len(inputs)`` calls; call ``i`` appends ``inputs[i]`` tokens (the first
    prompt, then each tool's result), generates ``outputs[i]`` and, unless it is the last,
    ends in ``tools[i]``."""
    n = len(inputs)
    if len(outputs) != n or len(tools) != n - 1:
        raise ValueError(f"{n} inputs need {n} outputs and {n - 1} tools")
    segments = tuple(
        Segment(inputs[i], outputs[i], tools[i] if i < n - 1 else None) for i in range(n)
    )
    return JobSpec(job_id=job_id, arrival=arrival, category=category, segments=segments)


def generate_jobs(
    prefix: str, num_jobs: int, rate: float, rng: random.Random | int, make_job: JobMaker
) -> list[JobSpec]:
    """``num_jobs`` jobs ``prefix-000000``... with Poisson arrivals at ``rate`` jobs/s.

    Arrivals and job contents come from two streams split off the seed, so a seed gives the
    same jobs at every rate (only arrival times scale).
    """
    arrival_rng, job_rng = split_streams(as_rng(rng))
    arrivals = poisson_arrivals(num_jobs, rate, arrival_rng)
    return [make_job(job_rng, f"{prefix}-{i:06d}", t) for i, t in enumerate(arrivals)]


def clipped_int(value: float, low: int, high: int) -> int:
    """round(value) clipped into [low, high]."""
    return min(max(round(value), low), high)
