"""KV copies on copy engines beside compute: overlap, bandwidth, landing and leaving rules."""

from __future__ import annotations

import dataclasses

import pytest

from astraea.core import KVAction, Policy, Scheduler, SchedulerConfig, StepResult
from astraea.core.job import JobStatus, KVLocation
from astraea.core.kv_cache import BlockCopy, CopyDirection
from astraea.core.plan import StepPlan
from astraea.sim.copy_engine import CopyEngines
from astraea.sim.executor import SimulatedExecutor
from astraea.sim.profiles import get_profile
from astraea.sim.run import simulate
from astraea.workloads import generate_workload
from tests.fakes import make_job

PROFILE = get_profile("llama2-7b-a100")
BS = 16


def copy(order: int, blocks: int, direction: CopyDirection, job: str = "a") -> BlockCopy:
    ids = tuple(range(blocks))
    return BlockCopy(job, ids, ids, blocks * BS, order, direction)


def test_each_direction_is_one_queue_at_the_link_rate_and_both_run_at_once() -> None:
    engines = CopyEngines(PROFILE, BS)
    one = PROFILE.swap_time(10 * BS)
    engines.submit([copy(1, 10, CopyDirection.OUT), copy(2, 10, CopyDirection.OUT)], 0.0)
    engines.submit([copy(3, 10, CopyDirection.IN, "b")], 0.0)
    assert engines.next_done == pytest.approx(one)
    assert engines.collect(one * 1.01) == (1, 3)  # the swap-in ran beside the first swap-out
    assert engines.collect(2 * one * 0.99) == ()
    assert engines.collect(2 * one) == (2,)  # the second swap-out waited for the first
    assert engines.busy_seconds == pytest.approx(3 * one)


def test_a_swap_out_waits_for_the_same_jobs_swap_in_to_land() -> None:
    engines = CopyEngines(PROFILE, BS)
    engines.submit([copy(1, 10, CopyDirection.IN), copy(2, 1, CopyDirection.OUT)], 0.0)
    one = PROFILE.swap_time(10 * BS)
    assert engines.collect(one) == (1,)
    assert engines.collect(one + PROFILE.swap_time(BS)) == (2,)


def test_copies_overlap_the_step_instead_of_adding_to_it() -> None:
    kv_plan = StepPlan(copies=[copy(1, 200, CopyDirection.OUT)], num_prefill_tokens=64)
    kv_plan.seqs.append(make_seq())
    kv_plan.num_prefill_tokens = 64
    serial = SimulatedExecutor(PROFILE, BS).execute(kv_plan, 0.0)
    overlap = SimulatedExecutor(PROFILE, BS, overlap=True).execute(kv_plan, 0.0)
    compute = PROFILE.iteration_time(64, 0, kv_plan.sum_kv_tokens)
    assert serial.elapsed == pytest.approx(compute + PROFILE.swap_time(200 * BS))
    assert overlap.elapsed == pytest.approx(compute)
    assert overlap.copies_done == ()  # 200 blocks take longer than the step


def make_seq():
    from astraea.core.plan import ScheduledSeq

    return ScheduledSeq("x", 0, 64, True, (0, 1, 2, 3))


def overlapping(num_device_blocks: int = 8, num_host_blocks: int = 16) -> Scheduler:
    config = SchedulerConfig(
        num_device_blocks=num_device_blocks, num_host_blocks=num_host_blocks, overlap_copies=True
    )

    class Swapper(Policy):
        name = "swapper"

        def on_tool_call(self, job, kv):
            return KVAction.SWAP

    return Scheduler(config, Swapper())


def run_to_tool(sched: Scheduler, job_id: str, now: float) -> float:
    while sched.jobs[job_id].status is not JobStatus.TOOL_WAIT:
        plan = sched.schedule(now)
        now += 0.01
        sched.update(plan, StepResult(0.01, plan.num_steps), now)
    return now


def test_swapped_out_blocks_free_only_once_the_copy_has_left() -> None:
    sched = overlapping()
    sched.add_job(make_job("a", [(60, 4), (8, 2)]), 0.0)  # 4 of 8 device blocks
    now = run_to_tool(sched, "a", 0.0)
    assert sched.jobs["a"].kv_location is KVLocation.HOST
    plan = sched.schedule(now)  # carries the swap-out
    (out,) = plan.copies
    assert out.direction is CopyDirection.OUT and sched.kv.num_free_device_blocks == 4
    sched.check_integrity()
    sched.update(plan, StepResult(0.0), now)
    sched.on_copies_done((out.order,))
    assert sched.kv.num_free_device_blocks == 8
    sched.check_integrity()


def test_a_swapped_in_job_runs_only_once_its_copy_has_landed() -> None:
    sched = overlapping()
    sched.add_job(make_job("a", [(60, 4), (8, 2)], tool_latency=0.5), 0.0)
    now = run_to_tool(sched, "a", 0.0)
    out = sched.schedule(now).copies[0]
    sched.on_copies_done((out.order,))
    sched.on_tool_result("a", now + 0.5)
    plan = sched.schedule(now + 0.5)
    (back,) = plan.copies
    assert back.direction is CopyDirection.IN and not plan.seqs  # admitted, not computing
    assert sched.jobs["a"].status is JobStatus.RUNNING and "a" in sched.kv.arriving
    sched.update(plan, StepResult(0.0), now + 0.5)
    assert not sched.schedule(now + 0.6).seqs  # still on its way
    sched.on_copies_done((back.order,))
    plan = sched.schedule(now + 0.7)
    assert [s.job_id for s in plan.seqs] == ["a"]
    assert plan.seqs[0].num_computed_before == 63  # all that was computed came back
    sched.check_integrity()


@pytest.mark.parametrize("policy", ["infercept", "astraea", "lamps"])
def test_simulations_with_copy_engines_keep_every_invariant(policy: str) -> None:
    small = dataclasses.replace(PROFILE, kv_capacity_tokens=6000, host_kv_capacity_tokens=20000)
    specs = generate_workload("infercept", 60, 4.0, seed=3)
    report = simulate(
        specs,
        policy,
        small,
        config_overrides={"overlap_copies": True},
        slowdown=False,
        check_integrity=True,
    )
    assert report.summary["jobs"] == 60
    assert report.result.counters.swapped_out_blocks > 0  # the copy engines were used


def test_ending_a_job_whose_swap_out_never_ran_frees_its_blocks() -> None:
    sched = overlapping()
    sched.add_job(make_job("a", [(60, 4), (8, 2)]), 0.0)
    run_to_tool(sched, "a", 0.0)  # its swap-out waits for the next plan
    sched.end_job("a", 1.0)
    assert sched.kv.num_free_device_blocks == 8
    sched.check_integrity()
