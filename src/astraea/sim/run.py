"""One call from jobs + policy name + profile to a finished simulation and its report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from astraea.core.job import Job, JobSpec
from astraea.metrics.jct import JobMetrics, job_metrics, summarize_jobs
from astraea.policies import make_policy
from astraea.sim.profiles import CostProfile
from astraea.sim.simulator import SimulationResult, Simulator, config_for_profile
from astraea.sim.solo import solo_jcts


@dataclass(slots=True)
class SimulationReport:
    summary: dict[str, Any]  # the aggregates written as JSON
    jobs: list[JobMetrics]
    result: SimulationResult


def simulate(
    specs: Sequence[JobSpec],
    policy: str,
    profile: CostProfile,
    *,
    config_overrides: dict[str, Any] | None = None,
    policy_params: dict[str, Any] | None = None,
    slowdown: bool = True,
    check_integrity: bool = False,
    on_job_finished: Callable[[Job], None] | None = None,
) -> SimulationReport:
    """Simulate ``specs`` under ``policy`` on ``profile`` and summarize per job and overall."""
    config = config_for_profile(profile, **(config_overrides or {}))
    sim = Simulator(
        specs,
        make_policy(policy, **(policy_params or {})),
        profile,
        config,
        check_integrity=check_integrity,
        on_job_finished=on_job_finished,
    )
    result = sim.run()
    solo = solo_jcts(specs, profile, config) if slowdown else None
    metrics = job_metrics(result.jobs, solo)
    counters = result.counters
    block_bytes = config.block_size * profile.kv_bytes_per_token
    summary: dict[str, Any] = {"policy": policy, "profile": profile.name}
    summary.update(summarize_jobs(metrics))
    summary.update(
        {
            "makespan": result.makespan,
            "kv_util_avg": result.kv_time_avg_owned,
            "kv_util_peak": max((o for _, o, _ in result.kv_timeline), default=0.0),
            "swapped_bytes": (counters.swapped_out_blocks + counters.swapped_in_blocks)
            * block_bytes,
            "swap_fallbacks": counters.swap_fallbacks,
            "reclaimed_preserved": counters.reclaimed_preserved,
            "evicted_cache_blocks": result.extra.get("evicted_cache_blocks", 0),
            "kv_actions": dict(counters.kv_actions),
            "engine_steps": result.num_steps,
            "sim_wall_seconds": result.wall_seconds,
            "sim_speedup": result.makespan / result.wall_seconds if result.wall_seconds else None,
        }
    )
    return SimulationReport(summary=summary, jobs=metrics, result=result)
