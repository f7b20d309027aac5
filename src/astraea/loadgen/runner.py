"""Run a set of jobs open-loop against one server and summarise what the clients saw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from astraea.core.job import JobSpec
from astraea.loadgen.client import BenchOptions, JobRecord, api_url, run_job
from astraea.metrics.jct import percentile


@dataclass(slots=True)
class BenchReport:
    label: str
    options: BenchOptions
    jobs: list[JobRecord]
    wall_seconds: float

    @property
    def completed(self) -> list[JobRecord]:
        return [j for j in self.jobs if j.error is None and j.jct is not None]

    @property
    def summary(self) -> dict[str, Any]:
        done = self.completed
        jcts = [j.jct for j in done if j.jct is not None]
        calls = [c for j in done for c in j.calls]
        ttfts = [c.ttft for c in calls if c.ttft is not None]
        latencies = [c.latency for c in calls if c.latency is not None]
        tpots = [t for c in calls if (t := c.tpot) is not None]
        itls = [gap for c in calls for gap in c.itl]  # every gap of every call, as vLLM
        out_tokens = sum(c.completion_tokens or 0 for j in self.jobs for c in j.calls)
        return {
            "label": self.label,
            "jobs": len(self.jobs),
            "completed": len(done),
            "failed": len(self.jobs) - len(done),
            "avg_jct": _mean(jcts),
            "p50_jct": percentile(jcts, 50) if jcts else None,
            "p90_jct": percentile(jcts, 90) if jcts else None,
            "p99_jct": percentile(jcts, 99) if jcts else None,
            "avg_ttft": _mean(ttfts),
            "p99_ttft": percentile(ttfts, 99) if ttfts else None,
            "avg_tpot": _mean(tpots),
            "p99_tpot": percentile(tpots, 99) if tpots else None,
            "avg_itl": _mean(itls),
            "p99_itl": percentile(itls, 99) if itls else None,
            "avg_call_latency": _mean(latencies),
            "calls": len(calls),
            "retries_429": sum(c.retries for j in self.jobs for c in j.calls),
            "wall_seconds": self.wall_seconds,
            "throughput_jobs_per_s": len(done) / self.wall_seconds if self.wall_seconds else 0,
            "output_tokens_per_s": out_tokens / self.wall_seconds if self.wall_seconds else 0,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "options": asdict(self.options) | {"api_key": None},
            "jobs": [
                asdict(j) | {"jct": j.jct} for j in sorted(self.jobs, key=lambda j: j.arrival)
            ],
            "errors": [f"{j.job_id}: {j.error}" for j in self.jobs if j.error][:20],
        }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


async def run_bench_async(
    specs: Sequence[JobSpec],
    options: BenchOptions,
    label: str = "",
    on_job_done: Callable[[JobRecord], None] | None = None,
) -> BenchReport:
    """Start every job at its arrival time (open loop), wait for all, collect records."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=options.timeout) as http:
        zero = time.monotonic()

        async def one(spec: JobSpec) -> JobRecord:
            record = await run_job(http, spec, options, zero)
            if on_job_done is not None:
                on_job_done(record)
            return record

        records = await asyncio.gather(*(one(s) for s in specs))
        wall = time.monotonic() - zero
    return BenchReport(label or options.base_url, options, list(records), wall)


def run_bench(
    specs: Sequence[JobSpec],
    options: BenchOptions,
    label: str = "",
    on_job_done: Callable[[JobRecord], None] | None = None,
) -> BenchReport:
    """Synchronous front of ``run_bench_async`` (its own event loop)."""
    return asyncio.run(run_bench_async(specs, options, label, on_job_done))


def fetch_model_name(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> str:
    """The first model a server lists at ``/models`` (what ``--model`` defaults to)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(api_url(base_url) + "/models", headers=headers, timeout=timeout)
    response.raise_for_status()
    models = response.json().get("data") or []
    if not models:
        raise ValueError(f"{base_url} lists no models")
    return str(models[0]["id"])
