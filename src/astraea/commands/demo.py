"""``astraea demo``: the real model behind our server, the same agent jobs under FCFS and
under astraea in alternating rounds (A B, B A, ...), the job completion times side by side.

Why rounds: run one after the other, the two policies meet different machine loads on a
shared CPU, and the load, not the policy, decided the printed ratio (1.28x to 0.55x). The
regime is one where astraea's gain is structural: a KV pool too small to keep every waiting
job's context, so FCFS (vLLM's handling) loses contexts over tool waits and recomputes them
while astraea keeps or swaps them; contention slows both runs alike and does not flip that.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from astraea.commands.options import RateOpt, SeedOpt, command_line, console

LOADED_CORES = 0.5  # other processes using more than this, on average: the figure may drift


def demo_command(
    jobs: Annotated[int, typer.Option("--jobs", "-n", min=1, help="Agent jobs per run.")] = 12,
    rate: RateOpt = 0.6,
    seed: SeedOpt = 0,
    policies: Annotated[
        str, typer.Option("--policies", help="Comma-separated policies; the first is the base.")
    ] = "vllm-fcfs,astraea",
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="Rounds; the order alternates (A B, B A, ...).")
    ] = 2,
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="GGUF file or HF directory.")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="Torch threads (default: every core, fewer while "
            "other processes keep cores busy).",
        ),
    ] = None,
    num_gpu_blocks_override: Annotated[
        int,
        typer.Option(
            "--num-gpu-blocks-override", min=8, help="KV blocks of 16 tokens (memory pressure)."
        ),
    ] = 80,
    gpu_blocks: Annotated[
        int | None, typer.Option("--gpu-blocks", min=8, hidden=True, help="Old name.")
    ] = None,
    num_cpu_blocks: Annotated[
        int, typer.Option("--num-cpu-blocks", min=0, help="Host KV blocks for swapped contexts.")
    ] = 256,
    max_num_seqs: Annotated[
        int, typer.Option("--max-num-seqs", min=1, help="Max running calls.")
    ] = 16,
    max_num_batched_tokens: Annotated[
        int, typer.Option("--max-num-batched-tokens", min=16, help="Token budget per step.")
    ] = 512,
    max_batched_tokens: Annotated[
        int | None, typer.Option("--max-batched-tokens", min=16, hidden=True, help="Old name.")
    ] = None,
    tool_scale: Annotated[
        float, typer.Option("--tool-scale", min=0.0, help="Multiply every tool latency.")
    ] = 1.0,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for demo.json and demo.png.")
    ] = Path("astraea-demo"),
) -> None:
    """Serve SmolLM2-135M-Instruct (bundled) on this CPU and replay the same small agent
    workload (2-3 LLM calls per job with tool waits, forced output lengths) against it under
    each policy over real HTTP, in alternating rounds; print each round, the spread, and a
    warning when other processes loaded the machine; write JSON and a plot. About 2-3
    minutes per run on 2 cores."""
    from astraea.policies import policy_names

    names = [p.strip() for p in policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in policy_names()]
    if unknown or not names:
        raise ValueError(f"unknown policy {unknown[0] if unknown else ''!r}; see `astraea list`")
    blocks = gpu_blocks or num_gpu_blocks_override
    batched = max_batched_tokens or max_num_batched_tokens
    from astraea.engine import Engine, EngineConfig, load_checkpoint
    from astraea.engine.replay import agent_trace
    from astraea.loadgen import BenchOptions
    from astraea.loadgen.live import bench_rounds
    from astraea.report.plots import plot_jct_comparison

    started = time.monotonic()
    with console.status("loading SmolLM2-135M (GGUF: vocabulary, dequantizing; ~10 s) ..."):
        checkpoint = load_checkpoint(model)
    console.print(f"model loaded in {time.monotonic() - started:.0f} s")
    specs = agent_trace(jobs, rate, seed)
    config = EngineConfig(
        dtype="float32", num_gpu_blocks=blocks, num_cpu_blocks=num_cpu_blocks, num_threads=threads
    )
    overrides = {"max_num_seqs": max_num_seqs, "max_num_batched_tokens": batched}
    options = BenchOptions("", "demo", tool_scale=tool_scale)
    with Progress(
        TextColumn("{task.description:>22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: list = []
        results = bench_rounds(
            lambda p: Engine(checkpoint, config, p, scheduler_overrides=overrides),
            specs,
            names,
            rounds,
            options,
            on_start=lambda r, p: tasks.append(
                progress.add_task(f"round {r + 1}: {p}", total=len(specs))
            ),
            on_job_done=lambda _: progress.advance(tasks[-1]),
        )
    record = _record(results, names)
    _print(record, jobs, rate)
    out.mkdir(parents=True, exist_ok=True)
    record |= {
        "command": command_line(),
        "workload": {"generator": "agent_trace", "jobs": jobs, "rate": rate, "seed": seed},
        "engine": {"num_gpu_blocks": blocks, "num_cpu_blocks": num_cpu_blocks, "block_size": 16}
        | {"dtype": "float32", "threads": threads or "auto"}
        | overrides,
        "wall_seconds": time.monotonic() - started,
        "runs": [r.to_dict() | {"round": i + 1, "machine": p.to_dict()}
                 for i, row in enumerate(results) for r, p in row],
    }  # fmt: skip
    (out / "demo.json").write_text(json.dumps(record, indent=2) + "\n")
    jcts = {
        n: [j.jct for row in results for r, _ in row if r.label == n for j in r.completed]
        for n in names
    }
    plot_jct_comparison(
        names, [[x for x in jcts[n] if x is not None] for n in names], out / "demo.png"
    )
    console.print(f"wrote {out / 'demo.json'} and {out / 'demo.png'}")
    if any(r.summary["failed"] for row in results for r, _ in row):
        raise ValueError("some jobs failed; see demo.json")


def _record(results: list, names: list[str]) -> dict:
    """Per round each policy's summary and the ratio to the first policy; over the rounds
    the median ratio and its spread; the most other processes used during any run."""
    per_round = []
    for row in results:
        by = {r.label: r.summary for r, _ in row}
        base = by[names[0]]["avg_jct"] or 1.0
        per_round.append({n: by[n] | {"ratio": by[n]["avg_jct"] / base} for n in names})
    others = [p.others_cores for row in results for _, p in row if p.others_cores is not None]
    loads = [max(p.load_before, p.load_after) for row in results for _, p in row]
    ratios = {n: [r[n]["ratio"] for r in per_round] for n in names[1:]}
    return {
        "rounds": per_round,
        "median_ratio": {n: statistics.median(v) for n, v in ratios.items()},
        "spread": {n: [min(v), max(v)] for n, v in ratios.items()},
        "max_others_cores": max(others) if others else None,
        "max_load_avg": max(loads),
        "loaded": bool(others) and max(others) > LOADED_CORES,
    }


def _print(record: dict, jobs: int, rate: float) -> None:
    names = list(record["rounds"][0])
    table = Table(title=f"{jobs} agent jobs at {rate} jobs/s, SmolLM2-135M on this CPU")
    for column in ("round", "policy", "avg JCT s", "p50 s", "p99 s", "avg TTFT s", "vs first"):
        table.add_column(column, justify="right")
    for i, row in enumerate(record["rounds"]):
        for n in names:
            s = row[n]
            cells = (f"{s[k]:.1f}" for k in ("avg_jct", "p50_jct", "p99_jct", "avg_ttft"))
            table.add_row(str(i + 1), n, *cells, f"{s['ratio']:.2f}x")
    console.print(table)
    for n in names[1:]:
        lo, hi = record["spread"][n]
        console.print(
            f"{n} / {names[0]} avg JCT: median {record['median_ratio'][n]:.2f}x over "
            f"{len(record['rounds'])} rounds (spread {lo:.2f}x - {hi:.2f}x)"
        )
    if record["loaded"]:
        console.print(
            f"[yellow]warning: other processes kept up to {record['max_others_cores']:.1f} "
            f"cores busy (load average up to {record['max_load_avg']:.1f}): the times are "
            f"slower than this machine can do; the rounds alternate, so the ratio holds "
            f"better than the absolute figures[/yellow]"
        )
