"""Experiment ``more-mixes``: the load sweep on the six agent-kind generators.

toolbench and chat belong to the tuning set; coding, bfcl, react and lats are held out
(``astraea.workloads.registry.TUNING_MIXES`` / ``EVALUATION_MIXES``, docs/workloads.md).
The report keeps the two apart: every analysis entry says which set its mix is in, so a
reader sees at once whether a number is one the parameters were chosen on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astraea.experiments import grids
from astraea.experiments.load_sweep import report_sweeps
from astraea.experiments.registry import Experiment, register
from astraea.experiments.spec import ExperimentResults, Options, RunSpec
from astraea.workloads.registry import EVALUATION_MIXES, TUNING_MIXES


def mix_set(workload: str) -> str:
    """ "tuning", "evaluation", or "unsplit" for a workload outside both sets."""
    if workload in TUNING_MIXES:
        return "tuning"
    if workload in EVALUATION_MIXES:
        return "evaluation"
    return "unsplit"


def build_more_mixes(options: Options) -> list[RunSpec]:
    return grids.mix_specs(grids.MORE_MIXES, options)


def report_more_mixes(results: ExperimentResults, out: Path) -> dict[str, Any]:
    analysis = report_sweeps(results, out)
    for key, entry in analysis.items():
        entry["set"] = mix_set(key.split("/", 1)[0])
    return analysis


MORE_MIXES = register(
    Experiment(
        name="more-mixes",
        version="1",
        description=(
            "JCT against arrival rate on Llama-2-7B/A100 for the agent-kind mixes: toolbench "
            "and chat (tuning set); coding, bfcl, react and lats (held out, evaluation set)."
        ),
        build=build_more_mixes,
        report=report_more_mixes,
    )
)
