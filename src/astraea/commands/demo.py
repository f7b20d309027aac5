"""``astraea demo``: the real model behind our server, the same agent jobs under FCFS and
under astraea, and the job completion times side by side."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from astraea.commands.options import RateOpt, SeedOpt, command_line, console


def demo_command(
    jobs: Annotated[int, typer.Option("--jobs", "-n", min=1, help="Agent jobs per run.")] = 12,
    rate: RateOpt = 0.3,
    seed: SeedOpt = 0,
    policies: Annotated[
        str, typer.Option("--policies", help="Comma-separated policies, run in this order.")
    ] = "vllm-fcfs,astraea",
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="GGUF file or HF directory.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Forward-pass worker threads (default: all cores)."),
    ] = None,
    gpu_blocks: Annotated[
        int, typer.Option("--gpu-blocks", min=8, help="KV blocks of 16 tokens (memory pressure).")
    ] = 128,
    max_num_seqs: Annotated[int, typer.Option("--max-num-seqs", min=1)] = 16,
    max_batched_tokens: Annotated[int, typer.Option("--max-batched-tokens", min=16)] = 512,
    tool_scale: Annotated[float, typer.Option("--tool-scale", min=0.0)] = 1.0,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for demo.json and demo.png.")
    ] = Path("astraea-demo"),
) -> None:
    """Serve SmolLM2-135M-Instruct (bundled) on this CPU and replay the same small agent
    workload (2-3 LLM calls per job with tool waits, forced output lengths) against it under
    each policy over real HTTP; print the JCT comparison and write JSON and a plot. A few
    minutes on 2 cores."""
    from astraea.engine import Engine, EngineConfig, load_checkpoint
    from astraea.engine.replay import agent_trace
    from astraea.loadgen import BenchOptions
    from astraea.loadgen.live import bench_policies
    from astraea.report.plots import plot_jct_comparison

    names = [p.strip() for p in policies.split(",") if p.strip()]
    from astraea.policies import policy_names

    unknown = [p for p in names if p not in policy_names()]
    if unknown or not names:
        raise ValueError(f"unknown policy {unknown[0] if unknown else ''!r}; see `astraea list`")
    workers = workers or os.cpu_count() or 1
    console.print("loading the model ...")
    checkpoint = load_checkpoint(model)
    specs = agent_trace(jobs, rate, seed)
    config = EngineConfig(
        dtype="float32",
        num_gpu_blocks=gpu_blocks,
        num_cpu_blocks=256,
        num_threads=1,
        num_workers=workers,
    )
    overrides = {"max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_batched_tokens}
    options = BenchOptions("", "demo", tool_scale=tool_scale)
    started = time.monotonic()
    with Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: list = []
        reports = bench_policies(
            lambda p: Engine(checkpoint, config, p, scheduler_overrides=overrides),
            specs,
            names,
            options,
            on_start=lambda p: tasks.append(progress.add_task(p, total=len(specs))),
            on_job_done=lambda _: progress.advance(tasks[-1]),
        )
    summaries = [r.summary for r in reports]
    _print(summaries, jobs, rate)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": command_line(),
        "workload": {"generator": "agent_trace", "jobs": jobs, "rate": rate, "seed": seed},
        "engine": {"gpu_blocks": gpu_blocks, "block_size": 16, "dtype": "float32"}
        | overrides
        | {"workers": workers, "threads_per_worker": 1},
        "wall_seconds": time.monotonic() - started,
        "runs": [r.to_dict() for r in reports],
    }
    (out / "demo.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_jct_comparison(
        names,
        [[j.jct for j in r.completed if j.jct is not None] for r in reports],
        out / "demo.png",
    )
    console.print(f"wrote {out / 'demo.json'} and {out / 'demo.png'}")
    if any(s["failed"] for s in summaries):
        raise ValueError("some jobs failed; see demo.json")


def _print(summaries: list[dict], jobs: int, rate: float) -> None:
    table = Table(title=f"{jobs} agent jobs at {rate} jobs/s, SmolLM2-135M on this CPU")
    for column in ("policy", "avg JCT s", "p50 s", "p99 s", "avg TTFT s", "vs first"):
        table.add_column(column, justify="right")
    base = summaries[0]["avg_jct"] or 1.0
    for s in summaries:
        table.add_row(
            s["label"],
            *(f"{s[k]:.1f}" for k in ("avg_jct", "p50_jct", "p99_jct", "avg_ttft")),
            f"{s['avg_jct'] / base:.2f}x",
        )
    console.print(table)
