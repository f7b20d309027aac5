import math

import pytest

from astraea.core import Job, JobStatus, KVAction, KVLocation
from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import bound, idle_job, kv_context, run_until_tool_or_end, scheduler


def test_cold_start_pins_for_an_exponential_quantile_when_memory_is_free():
    policy = bound("continuum")  # no tool seen: exponential, mean 1 s
    job = idle_job(computed=1000)
    assert policy.on_tool_call(job, kv_context(now=2.0)) is KVAction.PRESERVE
    # Nothing else competes for memory (price 0): the largest candidate, the 1 - 1/40 quantile.
    assert policy.deadline["j"] == pytest.approx(2.0 - math.log(0.5 / 20))


def test_pin_expires_after_its_time_to_live():
    sched, ex = scheduler("continuum"), FakeExecutor()
    sched.add_job(make_job("a", [(10, 2), (4, 2)], tool_latency=100.0), 0.0)
    run_until_tool_or_end(sched, ex, 0.0)
    job, deadline = sched.jobs["a"], sched.policy.deadline["a"]
    assert job.kv_location is KVLocation.DEVICE
    sched.schedule(deadline - 0.01)
    assert job.kv_location is KVLocation.DEVICE
    sched.schedule(deadline)
    assert job.kv_location is KVLocation.CACHED and "a" not in sched.policy.deadline
    sched.check_integrity()


def test_no_pin_when_memory_is_dear():
    policy = bound("continuum")
    for i in range(11):  # ten other active jobs
        policy.on_arrival(Job(spec=make_job(f"x{i}", [(4, 2)])), 0.0)
    job = idle_job(computed=1000)
    # The pin would hold a quarter of the pool; reload costs only 0.11 s.
    assert policy.on_tool_call(job, kv_context(total=1000)) is KVAction.CACHE


def test_time_to_live_follows_the_tool_s_learned_durations():
    policy = bound("continuum", min_samples=5)
    for _ in range(10):
        policy.tools.observe("tool", 0.5)
    assert policy.time_to_live(idle_job(), kv_context()) == 0.5


def test_quantile_rule_as_an_ablation():
    policy = bound("continuum", ttl_quantile=0.9, min_samples=5)
    for i in range(1, 11):
        policy.tools.observe("tool", i / 10)
    assert policy.time_to_live(idle_job(), kv_context()) == pytest.approx(0.9)


def test_tool_returns_teach_the_distribution_and_waits_the_queue_delay():
    sched, ex = scheduler("continuum", max_num_seqs=1), FakeExecutor()
    sched.add_job(make_job("a", [(4, 3), (4, 2)], tool_latency=0.3), 0.0)
    sched.add_job(make_job("b", [(4, 2)]), 0.0)  # queues behind "a"
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    sched.on_tool_result("a", now + 0.3)
    now += 0.3
    while sched.num_unfinished:
        _, now = run_until_tool_or_end(sched, ex, now)
    assert sched.policy.tools.samples("tool") == 1
    assert sched.policy.queue_delay > 0  # "b" waited with no pinned context
    assert sched.policy.active_jobs == 0


def test_pinned_returning_turns_go_first_then_program_fcfs():
    policy = bound("continuum")
    pinned = Job(spec=make_job("pinned", [(4, 2), (4, 2)], arrival=5.0))
    pinned.segment_index, pinned.kv_location = 1, KVLocation.DEVICE
    older = Job(spec=make_job("older", [(4, 2), (4, 2)], arrival=1.0))
    older.segment_index, older.kv_location = 1, KVLocation.CACHED
    new = Job(spec=make_job("new", [(4, 2)], arrival=3.0))
    ranked = sorted([new, older, pinned], key=lambda j: policy.priority(j, 9.0))
    assert [j.job_id for j in ranked] == ["pinned", "older", "new"]


def test_a_returned_pinned_job_keeps_its_context_while_it_waits():
    policy = bound("continuum")
    job = idle_job()
    job.status = JobStatus.WAITING
    assert policy.review_idle(job, kv_context(now=1e6)) is KVAction.PRESERVE
