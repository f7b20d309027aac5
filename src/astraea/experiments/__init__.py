"""Named, versioned experiments: load sweeps, ablations, parameter sweeps, other mixes.

Importing this package registers the experiments (in the order docs/results.md lists them).
"""

from astraea.experiments import (  # noqa: F401  (register)
    ablations,
    kv_sweep,
    load_sweep,
    mixes,
    more_mixes,
)
from astraea.experiments.registry import Experiment, experiment_names, get_experiment
from astraea.experiments.run import run_experiment
from astraea.experiments.spec import ExperimentResults, Options, RunResult, RunSpec, load_results

__all__ = [
    "Experiment",
    "ExperimentResults",
    "Options",
    "RunResult",
    "RunSpec",
    "experiment_names",
    "get_experiment",
    "load_results",
    "run_experiment",
]
