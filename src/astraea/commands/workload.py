"""``astraea workload`` (generate a built-in workload, or convert a trace of another format,
to our JSONL) and ``astraea list``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astraea.commands.options import (
    JobsOpt,
    RateOpt,
    SeedOpt,
    TraceFormatOpt,
    TraceOpt,
    WorkloadOpt,
    console,
    load_jobs,
)


def workload_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL trace file to write.")],
    workload: WorkloadOpt = None,
    trace: TraceOpt = None,
    trace_format: TraceFormatOpt = "jsonl",
    jobs: JobsOpt = None,
    rate: RateOpt = 2.0,
    seed: SeedOpt = 0,
) -> None:
    """Write jobs as our JSONL trace: a built-in workload (-w), or a trace of another format
    (--trace FILE --trace-format F) converted, so every later run reads the same jobs."""
    from astraea.workloads import write_trace

    specs, _ = load_jobs(workload, trace, jobs, rate, seed, trace_format)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_trace(specs, output)
    console.print(f"wrote {len(specs)} jobs to {output}")


def list_command() -> None:
    """List the policies, cost profiles, workloads and trace formats this install knows."""
    from astraea.policies import policy_names
    from astraea.sim.profiles import get_profile, profile_names
    from astraea.workloads import trace_format_names, workload_names

    console.print("policies:      " + ", ".join(policy_names()))
    console.print("workloads:     " + ", ".join(workload_names()))
    console.print("trace formats: " + ", ".join(trace_format_names()))
    console.print("profiles:")
    for name in profile_names():
        p = get_profile(name)
        console.print(
            f"  {name:22} {p.model} on {p.accelerator}, KV {p.kv_capacity_tokens:,} tokens"
        )
