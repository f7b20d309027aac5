"""Named synthetic workloads, so a CLI or a sweep can pick one by name, and the tuning /
evaluation split (docs/workloads.md).

Parameters of the scheduler (and of anything else tuned on results) are chosen on
``TUNING_MIXES`` only; ``EVALUATION_MIXES`` are held out and reported, never tuned on. The
held-out side has the shapes the tuning side lacks: long growing contexts with heavy-tailed
tools (coding), very short jobs with fast tools (bfcl), short search loops (react), and
hundreds of calls with almost no wait between them (lats).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from astraea.core.job import JobSpec
from astraea.workloads.autellix import generate_autellix
from astraea.workloads.bfcl import generate_bfcl
from astraea.workloads.chat import generate_chat
from astraea.workloads.coding import generate_coding
from astraea.workloads.continuum import generate_continuum
from astraea.workloads.infercept import generate_infercept
from astraea.workloads.lats import generate_lats
from astraea.workloads.react import generate_react
from astraea.workloads.toolbench import generate_toolbench

Generator = Callable[[int, float, random.Random | int], list[JobSpec]]

WORKLOADS: dict[str, Generator] = {
    "infercept": generate_infercept,
    "autellix": generate_autellix,
    "continuum": generate_continuum,
    "toolbench": generate_toolbench,
    "chat": generate_chat,
    "coding": generate_coding,
    "bfcl": generate_bfcl,
    "react": generate_react,
    "lats": generate_lats,
}

# Choose parameters on these ...
TUNING_MIXES: tuple[str, ...] = ("infercept", "autellix", "continuum", "toolbench", "chat")
# ... and report on these, never tuned on.
EVALUATION_MIXES: tuple[str, ...] = ("coding", "bfcl", "react", "lats")


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
