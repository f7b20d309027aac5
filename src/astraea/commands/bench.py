"""``astraea bench``: replay agent jobs against an OpenAI-compatible server, measure JCT."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from astraea.commands.options import (
    JobsOpt,
    JsonOpt,
    PlotOpt,
    RateOpt,
    SeedOpt,
    TraceFormatOpt,
    TraceOpt,
    WorkloadOpt,
    command_line,
    console,
    load_jobs,
)


def bench_command(
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url", "-u", help="The server's URL: its host root or its OpenAI base URL (/v1)."
        ),
    ] = "http://127.0.0.1:8000/v1",
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name; default: the first listed.")
    ] = None,
    workload: WorkloadOpt = None,
    trace: TraceOpt = None,
    trace_format: TraceFormatOpt = "jsonl",
    jobs: JobsOpt = None,
    rate: RateOpt = 0.5,
    seed: SeedOpt = 0,
    tool_scale: Annotated[
        float, typer.Option("--tool-scale", min=0.0, help="Multiply every tool latency.")
    ] = 1.0,
    token_scale: Annotated[
        float,
        typer.Option("--token-scale", min=0.0001, help="Multiply every prompt/output length."),
    ] = 1.0,
    max_call_tokens: Annotated[
        int | None,
        typer.Option("--max-call-tokens", min=1, help="Cap a call's new prompt and output."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force/--no-force", help="Force output lengths (min_tokens, ignore_eos)."),
    ] = True,
    job_hints: Annotated[
        bool,
        typer.Option(
            "--job-hints/--no-job-hints",
            help="Send X-Astraea-Job-Id, astraea_last and astraea_tool (others ignore them).",
        ),
    ] = True,
    latency_hints: Annotated[
        bool,
        typer.Option(
            "--tool-latency-hints", help="Also send each tool's true latency (oracle hint)."
        ),
    ] = False,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="OPENAI_API_KEY", help="Bearer key.")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Name of this run.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0, help="Per call, s.")] = 600.0,
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Replay agent jobs (a workload or a trace) against any OpenAI-compatible server: each
    job sends its calls in order over a growing chat context, sleeps for its tools' latencies,
    and the run reports JCT, TTFT, TPOT, ITL and per-call latency. Works against ours, vLLM,
    SGLang or llama.cpp's server."""
    from astraea.loadgen import BenchOptions, run_bench
    from astraea.loadgen.runner import fetch_model_name

    if workload is None and trace is None:
        workload = "infercept"
    specs, source = load_jobs(workload, trace, jobs, rate, seed, trace_format, default_jobs=20)
    try:
        name = model or fetch_model_name(base_url, api_key)
    except Exception as exc:  # connection refused, bad URL, not an OpenAI server
        raise ValueError(f"cannot list models at {base_url}: {exc}") from exc
    options = BenchOptions(
        base_url=base_url,
        model=name,
        api_key=api_key,
        tool_scale=tool_scale,
        token_scale=token_scale,
        max_call_tokens=max_call_tokens,
        force_lengths=force,
        job_hints=job_hints,
        tool_latency_hints=latency_hints,
        timeout=timeout,
    )
    with Progress(
        TextColumn("[bold]jobs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not sys.stdout.isatty(),
    ) as progress:
        task = progress.add_task("jobs", total=len(specs))
        report = run_bench(specs, options, label or base_url, lambda _: progress.advance(task))
    summary = report.summary
    _print_summary(summary)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        record = {"command": command_line(), "source": source}
        json_out.write_text(json.dumps(record | report.to_dict(), indent=2) + "\n")
    if plot is not None:
        from astraea.report.plots import plot_jct_comparison

        jcts = [j.jct for j in report.completed if j.jct is not None]
        plot_jct_comparison([summary["label"]], [jcts], plot)
    if summary["failed"]:
        first = report.to_dict()["errors"][0]
        raise ValueError(f"{summary['failed']} of {summary['jobs']} jobs failed; first: {first}")


# (summary key, column header, scale to the unit in the header)
_COLUMNS = (
    ("avg_jct", "avg JCT s", 1.0),
    ("p50_jct", "p50 JCT s", 1.0),
    ("p99_jct", "p99 JCT s", 1.0),
    ("avg_ttft", "avg TTFT s", 1.0),
    ("avg_tpot", "avg TPOT ms", 1000.0),
    ("avg_itl", "avg ITL ms", 1000.0),
    ("p99_itl", "p99 ITL ms", 1000.0),
    ("avg_call_latency", "avg call s", 1.0),
)


def _print_summary(summary: dict) -> None:
    table = Table(title=f"{summary['label']}: {summary['completed']}/{summary['jobs']} jobs")
    for _, header, _ in _COLUMNS:
        table.add_column(header, justify="right")
    table.add_column("jobs/s", justify="right")
    cells = ["-" if summary[k] is None else f"{summary[k] * scale:.2f}" for k, _, scale in _COLUMNS]
    table.add_row(*cells, f"{summary['throughput_jobs_per_s']:.3f}")
    console.print(table)
