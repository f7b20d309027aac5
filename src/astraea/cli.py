"""The ``astraea`` command line: thin commands that build inputs and call the library."""

from __future__ import annotations

import json
import sys
from importlib import import_module
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
    invoked,
    load_jobs,
)
from astraea.core.job import JobSpec

app = typer.Typer(
    help="astraea: job-aware scheduling for LLM agents. Simulate agent workloads under "
    "scheduling policies and compare their job completion times (JCT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from astraea import __version__

        typer.echo(f"astraea {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """astraea: job-aware scheduling for LLM agents."""


MaxSeqsOpt = Annotated[
    int | None, typer.Option("--max-num-seqs", min=1, help="Max running sequences (default 256).")
]
BudgetOpt = Annotated[
    int | None,
    typer.Option("--max-batched-tokens", min=1, help="Token budget per step (default 8192)."),
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


def _overrides(max_num_seqs: int | None, max_batched_tokens: int | None) -> dict[str, int]:
    out = {}
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


@app.command()
def simulate(
    workload: WorkloadOpt = None,
    trace: TraceOpt = None,
    trace_format: TraceFormatOpt = "jsonl",
    jobs: JobsOpt = 200,
    rate: RateOpt = 2.0,
    seed: SeedOpt = 0,
    policy: Annotated[
        str, typer.Option("--policy", "-P", help="Scheduling policy (see `astraea list`).")
    ] = "vllm-fcfs",
    profile: ProfileOpt = "llama2-7b-a100",
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
    max_num_seqs: MaxSeqsOpt = None,
    max_batched_tokens: BudgetOpt = None,
    slowdown: SlowdownOpt = True,
) -> None:
    """Simulate one policy on a workload or trace and print its JCT table."""
    specs, source = load_jobs(workload, trace, jobs, rate, seed, trace_format)
    (report,) = _run_policies(
        specs, [policy], profile, _overrides(max_num_seqs, max_batched_tokens), slowdown
    )
    _report([report], source, json_out, plot, single=True)


@app.command()
def compare(
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
    jobs: JobsOpt = 200,
    rate: RateOpt = 2.0,
    seed: SeedOpt = 0,
    profile: ProfileOpt = "llama2-7b-a100",
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
    max_num_seqs: MaxSeqsOpt = None,
    max_batched_tokens: BudgetOpt = None,
    slowdown: SlowdownOpt = True,
) -> None:
    """Run several policies on the same jobs; JSON is a list, one object per policy."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise typer.BadParameter("--policies needs at least one policy name")
    specs, source = load_jobs(workload, trace, jobs, rate, seed, trace_format)
    reports = _run_policies(
        specs, names, profile, _overrides(max_num_seqs, max_batched_tokens), slowdown
    )
    _report(reports, source, json_out, plot, single=False)


@app.command()
def workload(
    workload: Annotated[
        str, typer.Option("--workload", "-w", help="infercept, autellix or continuum.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL trace file to write.")],
    jobs: JobsOpt = 200,
    rate: RateOpt = 2.0,
    seed: SeedOpt = 0,
) -> None:
    """Generate a built-in workload and write it as a JSONL trace."""
    from astraea.workloads import generate_workload, write_trace

    specs = generate_workload(workload, jobs, rate, seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_trace(specs, output)
    console.print(f"wrote {len(specs)} jobs to {output}")


@app.command("list")
def list_names() -> None:
    """List the policies, cost profiles and workloads this install knows."""
    from astraea.policies import policy_names
    from astraea.sim.profiles import get_profile, profile_names
    from astraea.workloads import workload_names

    console.print("policies:  " + ", ".join(policy_names()))
    console.print("workloads: " + ", ".join(workload_names()))
    console.print("profiles:")
    for name in profile_names():
        p = get_profile(name)
        console.print(
            f"  {name:22} {p.model} on {p.accelerator}, KV {p.kv_capacity_tokens:,} tokens"
        )


EXPERIMENT_HELP = (
    "Run a named, versioned experiment; write results.json, PNG figures and table.md "
    "(default under docs/results/NAME/, or docs/results/NAME-quick/ with --quick).\n\n"
    "Experiments: load-sweep (avg and p99 JCT vs arrival rate, every policy, InferCept mix, "
    "three Llama-2 profiles); ablations (astraea without MLFQ / HRRN / adaptive KV, history "
    "vs oracle predictor); kv-sweep (KV watermark, Q0 quantum, queue count, aging ratio); "
    "mixes (Autellix-like and Continuum-like workloads). `astraea experiment --list` "
    "describes them."
)


@app.command(help=EXPERIMENT_HELP)
def experiment(
    name: Annotated[str | None, typer.Argument(help="Experiment name (see --list).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the experiments and exit.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer jobs and rates.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes (1: here).")] = 2,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: docs/results/NAME/).")
    ] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-n", min=1, help="Jobs per run.")] = None,
    seed: SeedOpt = 0,
    policies: Annotated[
        str | None, typer.Option("--policies", help="Comma-separated: run only these.")
    ] = None,
) -> None:
    """Run experiment NAME (help text: EXPERIMENT_HELP)."""
    from astraea.experiments import Options, experiment_names, get_experiment, run_experiment

    if list_:
        for known in experiment_names():
            e = get_experiment(known)
            console.print(f"{known:12} v{e.version}  {e.description}")
        return
    if name is None:
        raise typer.BadParameter("give an experiment NAME, or --list")
    if name not in experiment_names():
        raise typer.BadParameter(
            f"unknown experiment {name!r}; choose from: {', '.join(experiment_names())}"
        )
    keep = tuple(p.strip() for p in policies.split(",") if p.strip()) if policies else None
    options = Options(quick=quick, num_jobs=jobs, seed=seed, policies=keep)
    run_experiment(name, options, out, workers, command=command_line(), console=console)


# ---- commands defined in their own modules (astraea/commands/), one line each ----------
app.command("convert-gguf")(import_module("astraea.commands.convert").convert_gguf_command)
app.command("serve")(import_module("astraea.commands.serve").serve_command)
app.command("profile")(import_module("astraea.commands.profile").profile_command)
app.command("bench")(import_module("astraea.commands.bench").bench_command)
app.command("demo")(import_module("astraea.commands.demo").demo_command)
import_module("astraea.commands.serve_vllm").register(app)  # `astraea serve-vllm`


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage and input errors become one line on stderr and exit status 2."""
    invoked[:] = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="astraea", standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as err:  # usage errors and bad parameters
        format_message = getattr(err, "format_message", None)
        message = format_message() if format_message else str(err)
        print(f"astraea: error: {message}", file=sys.stderr)
        sys.exit(2)
    except (ValueError, OSError) as err:
        print(f"astraea: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
