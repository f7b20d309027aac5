"""``astraea experiment``: run a named, versioned experiment (astraea.experiments)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astraea.commands.options import SeedOpt, command_line, console

# Not docs/results/: after a pip install the working directory is the user's own project,
# where a docs/results/ tree would be ours mixed into theirs. The repository's published
# results are written with an explicit --out docs/results/NAME (docs/results.md).
RESULTS_DIR = Path("astraea-results")

EXPERIMENT_HELP = (
    "Run a named, versioned experiment; write results.json, PNG figures and table.md "
    f"(default under ./{RESULTS_DIR}/NAME/, or ./{RESULTS_DIR}/NAME-quick/ with --quick).\n\n"
    "Experiments: load-sweep (avg and p99 JCT vs arrival rate, every policy, InferCept mix, "
    "three Llama-2 profiles); ablations (astraea without MLFQ / HRRN / adaptive KV, history "
    "vs oracle predictor); kv-sweep (KV watermark, Q0 quantum, queue count, aging ratio); "
    "mixes (Autellix-like and Continuum-like workloads). `astraea experiment --list` "
    "describes them."
)


def default_out(name: str, quick: bool) -> Path:
    """./astraea-results/NAME/ (quick runs in NAME-quick/, never replacing full ones)."""
    return RESULTS_DIR / (f"{name}-quick" if quick else name)


def experiment_command(
    name: Annotated[str | None, typer.Argument(help="Experiment name (see --list).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the experiments and exit.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer jobs and rates.")] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes running the simulations (1: here).")
    ] = 2,
    out: Annotated[
        Path | None,
        typer.Option("--out", help=f"Output directory (default: ./{RESULTS_DIR}/NAME/)."),
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
    target = out if out is not None else default_out(name, quick)
    run_experiment(name, options, target, workers, command=command_line(), console=console)
