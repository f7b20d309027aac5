"""Job arrival processes."""

from __future__ import annotations

import math
import random


def poisson_arrivals(num_jobs: int, rate: float, rng: random.Random) -> list[float]:
    """Arrival times (s) of a Poisson process at ``rate`` jobs/s.

    Gaps are exponential with mean ``1 / rate``; the first job arrives after the first gap
    (not at 0), so every job sees the same process. InferCept's harness drives its runs
    the same way.
    """
    if isinstance(num_jobs, bool) or not isinstance(num_jobs, int) or num_jobs < 0:
        raise ValueError(f"num_jobs must be an integer >= 0, got {num_jobs!r}")
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a finite number > 0 (jobs/s), got {rate!r}")
    t = 0.0
    times = []
    for _ in range(num_jobs):
        t += rng.expovariate(rate)
        times.append(t)
    return times
