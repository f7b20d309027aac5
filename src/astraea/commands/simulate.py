"""``astraea simulate`` and ``astraea compare``: policies on the same jobs in the simulator,
a JCT table on the console, JSON and a figure on request."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from astraea.commands.options import (
    JobsOpt,
    JsonOpt,
    PlotOpt,
    ProfileOpt,
    RateOpt,
    SeedOpt,
    TraceFormatOpt,
    TraceOpt,
    WorkloadOpt,
    command_line,
    console,
    load_jobs,
)
from astraea.core.job import JobSpec

# old names kept working, hidden from --help (astraea.commands.options.aliased)
ALIASES = {"--max-batched-tokens": "--max-num-batched-tokens"}

MaxSeqsOpt = Annotated[
    int | None, typer.Option("--max-num-seqs", min=1, help="Max running sequences (default 256).")
]
BudgetOpt = Annotated[
    int | None,
    typer.Option(
        "--max-num-batched-tokens",
        min=1,
        help="Token budget per step (default 8192; vLLM's name, was --max-batched-tokens).",
    ),
]


class Copies(enum.StrEnum):
    serial = "serial"
    overlap = "overlap"


CopiesOpt = Annotated[
    Copies,
    typer.Option(
        "--copies",
        help="KV copies between tiers: 'serial' (added to the step; the default, what "
        "docs/results.md uses) or 'overlap' (copy engines beside compute, as GPUs do).",
    ),
]
SlowdownOpt = Annotated[
    bool, typer.Option("--slowdown/--no-slowdown", help="Compute slowdown vs the job alone.")
]
SUMMARY_COLUMNS = [
    ("avg_jct", "avg JCT s"),
    ("p50_jct", "p50 s"),
    ("p90_jct", "p90 s"),
    ("p99_jct", "p99 s"),
    ("avg_engine_time", "engine s"),
    ("avg_slowdown", "slowdown"),
    ("throughput_jobs_per_s", "jobs/s"),
    ("kv_util_avg", "KV util"),
    ("preemptions", "preempt"),
    ("recomputed_tokens", "recomputed tok"),
]


def _overrides(
    max_num_seqs: int | None, max_batched_tokens: int | None, copies: Copies = Copies.serial
) -> dict[str, int | bool]:
    out: dict[str, int | bool] = {"overlap_copies": True} if copies is Copies.overlap else {}
    if max_num_seqs is not None:
        out["max_num_seqs"] = max_num_seqs
    if max_batched_tokens is not None:
        out["max_num_batched_tokens"] = max_batched_tokens
    return out


def _run_policies(
    specs: list[JobSpec],
    policies: list[str],
    profile_name: str,
    overrides: dict[str, int],
    slowdown: bool,
) -> list[Any]:
    from astraea.policies import make_policy
    from astraea.sim.profiles import get_profile
    from astraea.sim.run import simulate

    profile = get_profile(profile_name)
    for name in policies:
        make_policy(name)  # fail fast on a bad name, before any long run
    reports = []
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        for name in policies:
            task = bar.add_task(f"{name} jobs done", total=len(specs))
            reports.append(
                simulate(
                    specs,
                    name,
                    profile,
                    config_overrides=overrides,
                    slowdown=slowdown,
                    on_job_finished=lambda _job, t=task: bar.advance(t),
                )
            )
    return reports


def _print_table(summaries: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    table.add_column("policy")
    for _, header in SUMMARY_COLUMNS:
        table.add_column(header, justify="right")
    for s in summaries:
        cells = []
        for key, _ in SUMMARY_COLUMNS:
            value = s.get(key)
            cells.append(f"{value:.3g}" if isinstance(value, float) else str(value))
        table.add_row(s["policy"], *cells)
    console.print(table)


def _write_json(path: Path, payload: Any) -> None:
    """Write JSON results; each object records the command line that made it."""
    command = command_line()
    rows = payload if isinstance(payload, list) else [payload]
    for row in rows:
        row.setdefault("command", command)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {path}")


def _report(
    reports: list[Any],
    source: dict[str, Any],
    json_out: Path | None,
    plot: Path | None,
    single: bool,
) -> None:
    """Table on the console, then the JSON (one object, or a list) and the figure asked for."""
    summaries = [{**r.summary, **source} for r in reports]
    _print_table(summaries, f"{summaries[0]['jobs']} jobs on {summaries[0]['profile']}")
    if json_out:
        _write_json(json_out, summaries[0] if single else summaries)
    if plot:
        from astraea.report.plots import plot_comparison, plot_simulation

        if single:
            plot_simulation(reports[0], plot)
        else:
            plot_comparison(reports, plot)
        console.print(f"wrote {plot}")


def simulate_command(
    workload: WorkloadOpt = None,
    trace: TraceOpt = None,
    trace_format: TraceFormatOpt = "jsonl",
    jobs: JobsOpt = None,
    rate: RateOpt = 2.0,
    seed: SeedOpt = 0,
    policy: Annotated[
        str, typer.Option("--policy", help="Scheduling policy (see `astraea list`).")
    ] = "vllm-fcfs",
    profile: ProfileOpt = "llama2-7b-a100",
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
    max_num_seqs: MaxSeqsOpt = None,
    max_batched_tokens: BudgetOpt = None,
    copies: CopiesOpt = Copies.serial,
    slowdown: SlowdownOpt = True,
) -> None:
    """Simulate one policy on a workload or trace and print its JCT table."""
    specs, source = load_jobs(workload, trace, jobs, rate, seed, trace_format)
    (report,) = _run_policies(
        specs, [policy], profile, _overrides(max_num_seqs, max_batched_tokens, copies), slowdown
    )
    _report([report], source, json_out, plot, single=True)


def compare_command(
    policies: Annotated[
        str,
        typer.Option(
            "--policies",
            help="Comma-separated policy names (default: stock vLLM, the strongest peers, "
            "astraea).",
        ),
    ] = "vllm-fcfs,infercept,continuum,astraea",
    workload: WorkloadOpt = None,
    trace: TraceOpt = None,
    trace_format: TraceFormatOpt = "jsonl",
    jobs: JobsOpt = None,
    rate: RateOpt = 2.0,
    seed: SeedOpt = 0,
    profile: ProfileOpt = "llama2-7b-a100",
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
    max_num_seqs: MaxSeqsOpt = None,
    max_batched_tokens: BudgetOpt = None,
    copies: CopiesOpt = Copies.serial,
    slowdown: SlowdownOpt = True,
) -> None:
    """Run several policies on the same jobs; JSON is a list, one object per policy."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise typer.BadParameter("--policies needs at least one policy name")
    specs, source = load_jobs(workload, trace, jobs, rate, seed, trace_format)
    reports = _run_policies(
        specs, names, profile, _overrides(max_num_seqs, max_batched_tokens, copies), slowdown
    )
    _report(reports, source, json_out, plot, single=False)
