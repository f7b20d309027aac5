"""Name -> experiment. An experiment is versioned so saved results say which grid made them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astraea.experiments.spec import ExperimentResults, Options, RunSpec

Builder = Callable[[Options], list[RunSpec]]
# writes figures and table.md under the directory; returns the analysis kept in results.json
Reporter = Callable[[ExperimentResults, Path], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named, versioned experiment: how to build its runs and how to report them."""

    name: str
    version: str  # bump when the grid or the runs change, so old results are told apart
    description: str
    build: Builder
    report: Reporter


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    if experiment.name in _REGISTRY and _REGISTRY[experiment.name] is not experiment:
        raise ValueError(f"experiment name {experiment.name!r} is taken")
    _REGISTRY[experiment.name] = experiment
    return experiment


def experiment_names() -> list[str]:
    """Registered experiment names, in registration order (the order of docs/results.md)."""
    return list(_REGISTRY)


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown experiment {name!r}; choose from: {', '.join(experiment_names())}"
        ) from None
