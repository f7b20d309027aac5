import pytest

from astraea.core import Job, KVAction, KVLocation
from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import (
    bound,
    idle_job,
    kv_context,
    order,
    run_until_tool_or_end,
    scheduler,
    step,
)

# A 1000-token context stopped on a tool, 10000 tokens of other requests on the device
# (blocks of 4 tokens). Discard wastes T_prefill(1000) * 11000 = 0.11 * 11000 = 1210;
# swap wastes 2 * T_swap(1000) * 10000 = 0.02 * 10000 = 200; preserve wastes elapsed * 1000.
PRESSURE = dict(total=5000, owned=(1000 + 10_000) // 4)


@pytest.mark.parametrize(
    ("elapsed", "host_free", "action"),
    [
        (0.0, 1000, KVAction.PRESERVE),  # at the call the predicted remaining time is 0
        (0.1, 1000, KVAction.PRESERVE),  # 100 < 200
        (1.0, 1000, KVAction.SWAP),  # 1000 > 200: swap is the cheapest release
        (1.0, 0, KVAction.PRESERVE),  # host full: only discard, 1000 < 1210
        (2.0, 0, KVAction.DISCARD),  # 2000 > 1210
    ],
)
def test_least_waste_with_elapsed_time_as_the_prediction(elapsed, host_free, action):
    policy = bound("infercept")
    job = idle_job(computed=1000, tool_started=10.0)
    kv = kv_context(now=10.0 + elapsed, host_free=host_free, **PRESSURE)
    assert policy.review_idle(job, kv) is action


def test_on_an_empty_engine_swapping_is_free_and_discarding_costs_the_own_recompute():
    policy = bound("infercept")
    job = idle_job(computed=1000)

    # Alone on the device (1000 tokens = 250 blocks): a swap stalls nobody (waste 0); a
    # discard costs the job's own recompute, 0.11 * 1000 = 110; preserve 1000 * elapsed.
    def alone(now, host_free=1000):
        return kv_context(now=now, total=5000, owned=250, host_free=host_free)

    assert policy.on_tool_call(job, alone(0.0)) is KVAction.PRESERVE
    assert policy.review_idle(job, alone(0.01)) is KVAction.SWAP
    assert policy.review_idle(job, alone(0.05, host_free=0)) is KVAction.PRESERVE
    assert policy.review_idle(job, alone(0.2, host_free=0)) is KVAction.DISCARD


def test_tool_call_preserves_then_review_releases_as_the_call_drags_on():
    sched, ex = scheduler("infercept", num_device_blocks=64), FakeExecutor(step_time=0.05)
    sched.add_job(make_job("a", [(40, 1), (4, 2)], tool_latency=100.0), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    job = sched.jobs["a"]
    assert job.kv_location is KVLocation.DEVICE  # preserved at the call
    sched.add_job(make_job("b", [(40, 150)]), now)  # keeps the engine busy, owns memory
    while job.kv_location is KVLocation.DEVICE and now < 50:
        _, _, now = step(sched, ex, now)
    assert job.kv_location in (KVLocation.HOST, KVLocation.NONE)
    assert 0.05 < now < 5.0  # released after a few steps, long before the tool returns


def test_order_is_fcfs_by_job_arrival_or_by_call_arrival():
    old = Job(spec=make_job("old", [(4, 2), (4, 2)], arrival=0.0))
    old.segment_index, old.ready_since = 1, 5.0  # its second call, after a tool call
    young = Job(spec=make_job("young", [(4, 2)], arrival=3.0))
    young.ready_since = 3.0
    for params, first in [({}, old), ({"order": "call"}, young)]:
        policy = bound("infercept", **params)
        assert min([old, young], key=lambda j: policy.priority(j, 6.0)) is first


def test_resumed_contexts_rank_preserved_then_swapped_then_the_rest():
    policy = bound("infercept")
    jobs = []
    for i, location in enumerate([KVLocation.NONE, KVLocation.HOST, KVLocation.DEVICE]):
        job = Job(spec=make_job(f"j{i}", [(4, 2)], arrival=float(i)))
        job.kv_location = location
        jobs.append(job)
    ranked = sorted(jobs, key=lambda j: policy.priority(j, 9.0))
    assert [j.kv_location for j in ranked] == [
        KVLocation.DEVICE,
        KVLocation.HOST,
        KVLocation.NONE,
    ]


def test_a_preserved_returning_call_goes_before_older_waiting_work():
    sched, ex = scheduler("infercept", {"order": "call"}, max_num_seqs=1), FakeExecutor()
    sched.add_job(make_job("a", [(4, 2), (4, 2)], tool_latency=0.01), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    sched.add_job(make_job("b", [(4, 2)], arrival=now), now)
    sched.on_tool_result("a", now + 0.01)  # context still preserved
    assert order(sched, now + 0.01) == ["a", "b"]


def test_preemption_swaps_out():
    policy = bound("infercept")
    assert policy.on_preempt(idle_job(), kv_context()) is KVAction.SWAP


def test_unknown_order_is_refused():
    with pytest.raises(ValueError, match="order"):
        bound("infercept", order="random")
