"""Experiment ``ablations``: which part of astraea buys what, and what the oracle is worth.

On Llama-2-7B/A100 over the load-sweep grid: astraea with the segment-oracle predictor (the
paper's setting) against itself without the MLFQ, without HRRN ordering, without the adaptive
KV manager, and with the online history predictor; vllm-fcfs is the reference. The predictor
pair (oracle, history) also runs on 13B and 70B, because the online-predictor target is
checked on every Llama-2 profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astraea.experiments import grids
from astraea.experiments.analysis import gain, gain_retained
from astraea.experiments.figures import plot_jct_vs_rate
from astraea.experiments.load_sweep import header
from astraea.experiments.registry import Experiment, register
from astraea.experiments.spec import ExperimentResults, Options, RunSpec
from astraea.experiments.sweep import groups, markdown_table, sweep_analysis, sweep_markdown

ORACLE, HISTORY = "astraea (oracle)", "history-predictor"
# label -> (policy, params); the first profile runs all of them, the others PREDICTOR_VARIANTS
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    ORACLE: ("astraea", {"predictor": "oracle"}),
    "no-mlfq": ("astraea", {"use_mlfq": False}),
    "no-hrrn": ("astraea", {"use_hrrn": False}),
    "no-adaptive-kv": ("astraea", {"adaptive_kv": False}),
    "no-swap": ("astraea", {"use_swap": False}),
    "swap-margin-1": ("astraea", {"swap_margin": 1.0}),
    HISTORY: ("astraea", {"predictor": "history"}),
    "vllm-fcfs": ("vllm-fcfs", {}),
}
PREDICTOR_VARIANTS = (ORACLE, HISTORY, "vllm-fcfs")


def build_ablations(options: Options) -> list[RunSpec]:
    n = grids.jobs(options, grids.LOAD_JOBS, grids.LOAD_JOBS_QUICK)
    specs = []
    for i, profile in enumerate(grids.LLAMA2_PROFILES):
        labels = list(VARIANTS) if i == 0 else list(PREDICTOR_VARIANTS)
        grid = grids.LOAD_GRIDS[profile], grids.LOAD_GRIDS_QUICK[profile]
        for rate in grids.rates(options, *grid):
            for label in labels:
                policy, params = VARIANTS[label]
                specs.append(
                    RunSpec(profile, "infercept", n, rate, options.seed, policy, params, {}, label)
                )
    return specs


def predictor_gains(analysis: dict[str, Any]) -> dict[str, float | None]:
    """Oracle and history gains over vllm-fcfs at its 1.5x rate, and the share kept."""
    series = analysis["series"]

    def at(label: str) -> float | None:
        return series.get(label, {}).get("at_reference", {}).get("avg_jct")

    base = at("vllm-fcfs")
    g_oracle, g_history = gain(at(ORACLE), base), gain(at(HISTORY), base)
    return {
        "reference_rate": analysis["reference_rate"],
        "oracle_gain": g_oracle,
        "history_gain": g_history,
        "retained": gain_retained(g_history, g_oracle),
    }


def report_ablations(results: ExperimentResults, out: Path) -> dict[str, Any]:
    analysis: dict[str, Any] = {}
    parts = [header(results)]
    gain_rows = []
    for (profile, workload), group in groups(results.runs).items():
        key = f"{workload}/{profile}"
        a = sweep_analysis(group)
        a["predictor"] = predictor_gains(a)
        analysis[key] = a
        figure = plot_jct_vs_rate(group, out / f"ablations_{profile}.png", f"ablations, {profile}")
        a["figure"] = figure.name
        parts.append(sweep_markdown(f"Ablations on {profile}", group, a))
        parts.append(f"\n![{key}]({figure.name})\n\n")
        p = a["predictor"]
        gain_rows.append(
            [profile, p["reference_rate"], p["oracle_gain"], p["history_gain"], p["retained"]]
        )
    parts.append("### Online predictor: share of the oracle gain kept (target >= 0.8)\n\n")
    parts.append(
        markdown_table(
            ["profile", "reference rate", "oracle gain", "history gain", "kept"], gain_rows
        )
    )
    (out / "table.md").write_text("".join(parts))
    return analysis


ABLATIONS = register(
    Experiment(
        name="ablations",
        version="3",
        description=(
            "astraea without MLFQ, without HRRN, without adaptive KV, without swapping, with "
            "swaps at margin 1, and with the online history predictor instead of the segment "
            "oracle, against vllm-fcfs, over the "
            "load-sweep rate grid (7B/A100; the predictor pair on 13B and 70B too)."
        ),
        build=build_ablations,
        report=report_ablations,
    )
)
