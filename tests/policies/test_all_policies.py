"""Every registered policy through the simulator under KV pressure, invariants checked at
every step: all jobs finish, block accounting stays consistent."""

import random

import pytest

from astraea.core import JobSpec, JobStatus, Segment, ToolCall
from astraea.policies import policy_names
from astraea.sim.profiles import get_profile
from astraea.sim.run import simulate
from astraea.workloads import generate_workload

PROFILE = get_profile("llama2-7b-a100")
INFERCEPT_JOBS = generate_workload("infercept", 24, 20.0, 0)


def finished_under_pressure(report, count: int) -> None:
    jobs = report.result.jobs
    assert len(jobs) == count
    assert all(j.status == JobStatus.FINISHED and j.finish_time is not None for j in jobs)
    counters = report.result.counters
    # Memory ran out at least once: a preemption, a reclaimed or evicted context, a swap.
    assert (
        counters.preemptions
        + counters.reclaimed_preserved
        + counters.swapped_out_blocks
        + report.summary["evicted_cache_blocks"]
    ) > 0


@pytest.mark.parametrize("name", policy_names())
def test_infercept_workload_at_high_load_on_small_memory(name):
    # 24 jobs arriving at 20 jobs/s into 500 blocks (8000 tokens, ~5 full contexts).
    report = simulate(
        INFERCEPT_JOBS,
        name,
        PROFILE,
        config_overrides={"num_device_blocks": 500, "num_host_blocks": 200},
        slowdown=False,
        check_integrity=True,
    )
    finished_under_pressure(report, len(INFERCEPT_JOBS))


def random_jobs(seed: int, count: int = 20) -> list[JobSpec]:
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        calls = rng.randint(1, 4)
        segments = tuple(
            Segment(
                rng.randint(1, 100),
                rng.randint(1, 50),
                None
                if k == calls - 1
                else ToolCall(rng.choice(["fast", "slow"]), rng.expovariate(1.0) * 2),
            )
            for k in range(calls)
        )
        jobs.append(JobSpec(f"r{i}", rng.uniform(0.0, 1.0), "random", segments))
    return jobs


@pytest.mark.parametrize("name", policy_names())
def test_random_jobs_on_tiny_device_and_host_memory(name):
    jobs = random_jobs(seed=sum(map(ord, name)))
    # 40 blocks of 16 tokens (a job needs at most 38), a host tier of 16 blocks.
    report = simulate(
        jobs,
        name,
        PROFILE,
        config_overrides={"num_device_blocks": 40, "num_host_blocks": 16},
        slowdown=False,
        check_integrity=True,
    )
    finished_under_pressure(report, len(jobs))
