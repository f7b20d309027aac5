"""Named synthetic workloads, so a CLI or a sweep can pick one by name."""

from __future__ import annotations

import random
from collections.abc import Callable

from astraea.core.job import JobSpec
from astraea.workloads.autellix import generate_autellix
from astraea.workloads.continuum import generate_continuum
from astraea.workloads.infercept import generate_infercept

Generator = Callable[[int, float, random.Random | int], list[JobSpec]]

WORKLOADS: dict[str, Generator] = {
    "infercept": generate_infercept,
    "autellix": generate_autellix,
    "continuum": generate_continuum,
}


def workload_names() -> list[str]:
    """The registered workload names, sorted."""
    return sorted(WORKLOADS)


def generate_workload(name: str, num_jobs: int, rate: float, seed: int = 0) -> list[JobSpec]:
    """``num_jobs`` jobs of workload ``name``, Poisson arrivals at ``rate`` jobs/s.

    The same (name, num_jobs, seed) gives the same jobs at every rate; only arrivals scale.
    """
    try:
        generator = WORKLOADS[name]
    except KeyError:
        raise ValueError(
            f"unknown workload {name!r}; valid names: {', '.join(workload_names())}"
        ) from None
    return generator(num_jobs, rate, random.Random(seed))
