"""A job's completion time when it has the engine to itself: the denominator of slowdown.

Alone, the mechanism's behaviour is fixed: each call prefills its new tokens (plus the
previous call's last output token, whose KV was never computed) in chunks of the token
budget, the last chunk samples the first output token, then one decode step per further
token; KV is kept across tool calls. A test holds this closed form to a simulated run.
"""

from __future__ import annotations

from collections.abc import Iterable

from astraea.core.config import SchedulerConfig
from astraea.core.job import JobSpec
from astraea.sim.profiles import CostProfile


def solo_jct(spec: JobSpec, profile: CostProfile, config: SchedulerConfig) -> float:
    budget = config.max_num_batched_tokens
    total = 0.0
    computed = 0
    pending = 0  # the previous call's last output token
    for segment in spec.segments:
        todo = pending + segment.input_tokens
        while todo:
            n = min(todo, budget)
            computed += n
            todo -= n
            total += profile.iteration_time(0 if n == 1 else n, 1 if n == 1 else 0, computed)
        # Decode steps 2..out: step j attends to computed + j tokens.
        steps = segment.output_tokens - 1
        total += steps * (profile.a + profile.c + profile.e * computed)
        total += profile.e * steps * (steps + 1) / 2
        computed += steps
        pending = 1
        if segment.tool is not None:
            total += segment.tool.latency
    return total


def solo_jcts(
    specs: Iterable[JobSpec], profile: CostProfile, config: SchedulerConfig
) -> dict[str, float]:
    """Alone-on-the-engine JCT per job id."""
    return {spec.job_id: solo_jct(spec, profile, config) for spec in specs}
