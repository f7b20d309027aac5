"""astraea's array-kept waiting order equals sorting the policy's own keys, step by step."""

import heapq

import pytest

from astraea.core import JobStatus, PolicyEnv, Scheduler, SchedulerConfig
from astraea.policies import make_policy
from astraea.policies.ratio_order import RatioOrder
from astraea.predict import ServiceTimeModel
from astraea.sim.profiles import get_profile
from astraea.workloads import generate_workload
from tests.fakes import FakeExecutor


def reference_order(sched: Scheduler, now: float) -> list[str]:
    """The order a plain sort of ``priorities`` gives, ties by push order."""
    order = sched.waiting._order
    jobs = order.jobs()
    seqs = [int(order._cols.seq[order._slot[j.job_id]]) for j in jobs]
    keys = sched.policy.priorities(jobs, now)
    ranked = sorted(zip(keys, seqs, range(len(jobs)), strict=True))
    return [jobs[r[2]].job_id for r in ranked]


@pytest.mark.parametrize(
    "params",
    [
        {},  # the default: service cost, claim-weighted HRRN
        {"hrrn_size": "time", "call_cost": "tokens"},  # the paper's literal reading
        {"num_queues": 2, "base_quantum": 64, "aging_ratio": 1.5},  # aging fires often
        {"hrrn_wait": "engine"},  # W: time in the engine, not only queued
    ],
)
def test_order_matches_sorted_priorities_through_a_memory_bound_run(params):
    policy = make_policy("astraea", **params)
    policy.bind(PolicyEnv(service=ServiceTimeModel.from_profile(get_profile("llama2-7b-a100"))))
    # Little device memory and a host tier: calls are preempted, swapped and recomputed, so
    # waiting jobs change revision (claims move) while they wait.
    config = SchedulerConfig(num_device_blocks=400, num_host_blocks=400, max_num_seqs=16)
    sched = Scheduler(config, policy)
    assert isinstance(sched.waiting._order, RatioOrder)
    ex = FakeExecutor(step_time=0.05)
    returns: list[tuple[float, str]] = []
    now, compared, aged = 0.0, 0, 0
    for spec in generate_workload("infercept", 60, rate=20.0, seed=3):
        sched.add_job(spec, spec.arrival)
    while sched.num_unfinished and now < 400.0:
        while returns and returns[0][0] <= now:
            sched.on_tool_result(heapq.heappop(returns)[1], now)
        if len(sched.waiting) > 1:
            got = [j.job_id for j in sched.waiting.ordered(now)]
            assert got == reference_order(sched, now)
            compared += 1
            lowest = policy.config.num_queues - 1
            aged += sum(
                key[0] == 0 and j.policy_state.get("level", 0) == lowest
                for j, key in zip(
                    sched.waiting.jobs(), policy.priorities(sched.waiting.jobs(), now), strict=True
                )
            )
        plan = sched.schedule(now)
        now += 0.05
        outcome = sched.update(plan, ex.execute(plan), now)
        for job, tool in outcome.tool_calls:
            heapq.heappush(returns, (now + tool.latency, job.job_id))
    assert compared > 100
    if params.get("aging_ratio"):
        assert aged > 0  # the aging rule was exercised, not just the plain ratio


def test_removing_a_job_keeps_every_other_slot_right():
    policy = make_policy("astraea")
    policy.bind(PolicyEnv(service=ServiceTimeModel.from_profile(get_profile("llama2-7b-a100"))))
    sched = Scheduler(SchedulerConfig(num_device_blocks=10_000, max_num_seqs=1), policy)
    for spec in generate_workload("infercept", 12, rate=100.0, seed=5):
        sched.add_job(spec, 0.0)
    order = sched.waiting._order
    first = [j.job_id for j in order.ordered(1.0)]
    sched.waiting.remove_many([sched.jobs[first[0]], sched.jobs[first[5]]])
    assert [j.job_id for j in order.ordered(1.0)] == reference_order(sched, 1.0)
    assert len(sched.waiting) == len(order) == 10
    assert all(j.status == JobStatus.WAITING for j in order.jobs())


def test_fifo_within_a_level_uses_the_plain_sort():
    assert make_policy("astraea", use_hrrn=False).waiting_order() is None
