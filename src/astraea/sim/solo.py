"""A job's completion time when it has the engine to itself: the denominator of slowdown.

Measured by simulating the job alone with the same mechanism and cost profile (its KV kept
across tool calls), so slowdown never mixes two models of the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from astraea.core.config import SchedulerConfig
from astraea.core.job import Job, JobSpec
from astraea.core.policy import KVAction, KVContext, Policy
from astraea.sim.profiles import CostProfile


class _AloneOnEngine(Policy):
    name = "alone"

    def on_tool_call(self, job: Job, kv: KVContext) -> KVAction:
        return KVAction.PRESERVE


def solo_jct(spec: JobSpec, profile: CostProfile, config: SchedulerConfig) -> float:
    from astraea.sim.simulator import Simulator  # the simulator imports nothing from here

    alone = replace(spec, arrival=0.0)
    result = Simulator([alone], _AloneOnEngine(), profile, config).run()
    jct = result.jobs[0].jct
    assert jct is not None
    return jct


def solo_jcts(
    specs: Iterable[JobSpec], profile: CostProfile, config: SchedulerConfig
) -> dict[str, float]:
    """Alone-on-the-engine JCT per job id (jobs with identical segments simulated once)."""
    memo: dict[tuple, float] = {}
    out: dict[str, float] = {}
    for spec in specs:
        key = spec.segments
        if key not in memo:
            memo[key] = solo_jct(spec, profile, config)
        out[spec.job_id] = memo[key]
    return out
