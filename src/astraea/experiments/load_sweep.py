"""Experiment ``load-sweep``: JCT against arrival rate, every policy, the same jobs.

The basis of the targets (issue 3): the InferCept mix on each Llama-2 profile. Its reporter
serves every rate-sweep experiment (one figure and one table section per profile/workload).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astraea.experiments import grids
from astraea.experiments.figures import plot_jct_vs_rate
from astraea.experiments.registry import Experiment, register
from astraea.experiments.spec import ExperimentResults, Options, RunSpec
from astraea.experiments.sweep import groups, sweep_analysis, sweep_markdown


def build_load_sweep(options: Options) -> list[RunSpec]:
    n = grids.jobs(options, grids.LOAD_JOBS, grids.LOAD_JOBS_QUICK)
    specs = []
    for profile in grids.LLAMA2_PROFILES:
        grid = grids.LOAD_GRIDS[profile], grids.LOAD_GRIDS_QUICK[profile]
        for rate in grids.rates(options, *grid):
            for policy in grids.all_policies():
                specs.append(
                    RunSpec(profile, "infercept", n, rate, options.seed, policy, label=policy)
                )
    return specs


def header(results: ExperimentResults) -> str:
    """The top of every table.md: what, which version, made how."""
    meta = results.meta
    lines = [
        f"# Experiment `{results.experiment}` (version {results.version})\n",
        f"{results.description}\n",
        f"Made by `{meta.get('command', '?')}` on {meta.get('date', '?')} "
        f"({len(results.runs)} runs, {meta.get('wall_seconds', 0):.0f} s wall, "
        f"{meta.get('workers', '?')} worker(s)).\n",
    ]
    notes = meta.get("skip_notes", [])
    if notes:
        lines.append("Not measured:\n\n" + "".join(f"- {n}\n" for n in notes))
    return "\n".join(lines) + "\n"


def report_sweeps(results: ExperimentResults, out: Path) -> dict[str, Any]:
    """Per (profile, workload): analysis, a figure (avg and p99 JCT vs rate) and a table."""
    analysis: dict[str, Any] = {}
    parts = [header(results)]
    for (profile, workload), group in groups(results.runs).items():
        key = f"{workload}/{profile}"
        a = sweep_analysis(group)
        analysis[key] = a
        marks = {}
        if a["reference_rate"] is not None:
            marks[f"{a['baseline']} 1.5x"] = a["reference_rate"]
        figure = plot_jct_vs_rate(
            group, out / f"{workload}_{profile}.png", f"{workload} on {profile}", marks=marks
        )
        a["figure"] = figure.name
        parts.append(sweep_markdown(f"{workload} on {profile}", group, a))
        parts.append(f"\n![{key}]({figure.name})\n\n")
    (out / "table.md").write_text("".join(parts))
    return analysis


LOAD_SWEEP = register(
    Experiment(
        name="load-sweep",
        version="1",
        description=(
            "Average and p99 JCT against arrival rate, every registered policy on the same "
            "InferCept-mix jobs, for each Llama-2 profile (7B/A100, 13B/2xA100, 70B/4xA100)."
        ),
        build=build_load_sweep,
        report=report_sweeps,
    )
)
