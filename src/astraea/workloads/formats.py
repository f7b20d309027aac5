"""Every trace format a command can read, by name, behind one ``load_trace`` call.

Formats without arrival times (InferCept, ShareGPT) draw Poisson arrivals at ``rate``; the
others keep the file's times. ``num_jobs`` keeps the first N jobs (by arrival).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from astraea.core.job import JobSpec
from astraea.workloads.csv_traces import load_azure, load_burstgpt
from astraea.workloads.importers import load_infercept_dataset, load_mooncake_trace
from astraea.workloads.sharegpt import load_sharegpt
from astraea.workloads.trace import read_trace

Loader = Callable[[str | os.PathLike[str], float, int, int | None], list[JobSpec]]


@dataclass(frozen=True, slots=True)
class TraceFormat:
    name: str
    description: str
    load: Loader
    uses_rate: bool = False  # arrivals are drawn at --rate (the file has no times)


def _first(jobs: list[JobSpec], n: int | None) -> list[JobSpec]:
    return jobs if n is None else sorted(jobs, key=lambda j: j.arrival)[:n]


TRACE_FORMATS: dict[str, TraceFormat] = {
    f.name: f
    for f in (
        TraceFormat(
            "jsonl", "ours (docs/trace-format.md)", lambda p, r, s, n: _first(read_trace(p), n)
        ),
        TraceFormat(
            "infercept",
            "InferCept dataset JSON; Poisson arrivals at --rate",
            lambda p, r, s, n: load_infercept_dataset(p, rate=r, seed=s)[:n],
            uses_rate=True,
        ),
        TraceFormat(
            "mooncake",
            "Mooncake request JSONL, sessions grouped into jobs",
            lambda p, r, s, n: _first(load_mooncake_trace(p), n),
        ),
        TraceFormat(
            "sharegpt",
            "ShareGPT JSON (vllm bench serve's), a conversation per job, the user as the "
            "tool; Poisson arrivals at --rate",
            lambda p, r, s, n: load_sharegpt(p, rate=r, seed=s, num_jobs=n),
            uses_rate=True,
        ),
        TraceFormat(
            "burstgpt",
            "BurstGPT CSV, a request per job",
            lambda p, r, s, n: load_burstgpt(p, num_jobs=n),
        ),
        TraceFormat(
            "azure",
            "Azure LLM inference trace CSV (2023/2024), a request per job",
            lambda p, r, s, n: load_azure(p, num_jobs=n),
        ),
    )
}


def trace_format_names() -> list[str]:
    return list(TRACE_FORMATS)


def load_trace(
    path: str | os.PathLike[str],
    fmt: str = "jsonl",
    *,
    rate: float = 1.0,
    seed: int = 0,
    num_jobs: int | None = None,
) -> list[JobSpec]:
    """The jobs of trace ``path`` in format ``fmt`` (see ``TRACE_FORMATS``)."""
    try:
        spec = TRACE_FORMATS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown trace format {fmt!r}; use one of: {', '.join(TRACE_FORMATS)}"
        ) from None
    if num_jobs is not None and (isinstance(num_jobs, bool) or num_jobs < 1):
        raise ValueError(f"num_jobs must be an integer >= 1, got {num_jobs!r}")
    return spec.load(path, rate, seed, num_jobs)
