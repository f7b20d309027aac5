"""What several commands share: the workload/trace options, loading the jobs they name, the
console, and the command line recorded in every JSON result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from astraea.core.job import JobSpec

console = Console() if sys.stdout.isatty() else Console(width=160)

WorkloadOpt = Annotated[
    str | None,
    typer.Option("--workload", "-w", help="Built-in workload: infercept, autellix, continuum."),
]
TraceOpt = Annotated[
    Path | None,
    typer.Option(
        "--trace", "-t", help="JSONL trace file (docs/trace-format.md) instead of a workload."
    ),
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-n", min=1, help="Jobs to generate (workload only).")
]
RateOpt = Annotated[float, typer.Option("--rate", "-r", help="Poisson arrival rate, jobs/s (> 0).")]
TraceFormatOpt = Annotated[
    str,
    typer.Option(
        "--trace-format",
        help="Format of --trace: jsonl (ours), infercept (InferCept dataset JSON; arrivals "
        "Poisson at --rate) or mooncake (Mooncake request JSONL, sessions grouped into jobs).",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", "-s", help="Seed of the workload generator.")]
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile", "-p", help="Cost profile name (see `astraea list`) or a profile JSON file."
    ),
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the aggregates as JSON here.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a PNG figure here.")]


def load_jobs(
    workload: str | None,
    trace: Path | None,
    jobs: int,
    rate: float,
    seed: int,
    trace_format: str = "jsonl",
) -> tuple[list[JobSpec], dict[str, Any]]:
    from astraea.workloads import (
        generate_workload,
        load_infercept_dataset,
        load_mooncake_trace,
        read_trace,
    )

    if (workload is None) == (trace is None):
        raise typer.BadParameter("give exactly one of --workload NAME or --trace FILE")
    if trace is not None:
        source = {"trace": str(trace), "trace_format": trace_format}
        if trace_format == "jsonl":
            return read_trace(trace), source
        if trace_format == "infercept":  # no arrival times in the file: Poisson at --rate
            return load_infercept_dataset(trace, rate=rate, seed=seed), {**source, "rate": rate}
        if trace_format == "mooncake":
            return load_mooncake_trace(trace), source
        raise typer.BadParameter(
            f"unknown --trace-format {trace_format!r}; use jsonl, infercept or mooncake"
        )
    assert workload is not None
    return generate_workload(workload, jobs, rate, seed), {
        "workload": workload,
        "jobs_requested": jobs,
        "rate": rate,
        "seed": seed,
    }


invoked: list[str] = []  # the arguments of the running command, for the records it writes


def command_line() -> str:
    """The command being run, as a user would type it (recorded in every JSON result)."""
    return " ".join(["astraea", *(invoked or sys.argv[1:])])
