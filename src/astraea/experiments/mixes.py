"""Experiment ``mixes``: the load sweep on the Autellix-like and Continuum-like workloads.

The InferCept mix is tool-bound; these two are compute-bound (Autellix: many short calls per
program) and context-bound (Continuum: ~70-90k tokens per job), so they test whether a
policy's gain holds when the bottleneck moves.
"""

from __future__ import annotations

from astraea.experiments import grids
from astraea.experiments.load_sweep import report_sweeps
from astraea.experiments.registry import Experiment, register
from astraea.experiments.spec import Options, RunSpec


def build_mixes(options: Options) -> list[RunSpec]:
    return grids.mix_specs(grids.MIXES, options)


MIXES = register(
    Experiment(
        name="mixes",
        version="1",
        description=(
            "JCT against arrival rate on the Autellix-like mix (Llama-2-7B/A100) and the "
            "Continuum-like mix (Llama-3.1-8B/H100, fewer jobs: each holds ~70-90k tokens)."
        ),
        build=build_mixes,
        report=report_sweeps,
    )
)
