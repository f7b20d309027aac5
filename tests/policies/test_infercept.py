import pytest

from astraea.core import Job, JobStatus, KVAction, KVLocation
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
# preserve wastes the remaining tool time * 1000.
PRESSURE = dict(total=5000, owned=(1000 + 10_000) // 4)


@pytest.mark.parametrize(
    ("latency", "elapsed", "action"),
    [
        (1.0, 0.0, KVAction.PRESERVE),  # 1000 < 1210: keep it through the call
        (5.0, 0.0, KVAction.CACHE),  # 5000 > 1210: discard at once (lazily)
        (5.0, 4.0, KVAction.PRESERVE),  # 1 s left: 1000 < 1210
    ],
)
def test_preserve_or_discard_by_the_true_remaining_time(latency, elapsed, action):
    policy = bound("infercept")
    job = idle_job(computed=1000, tool_latency=latency, tool_started=10.0)
    kv = kv_context(now=10.0 + elapsed, **PRESSURE)
    assert policy.review_idle(job, kv) is action


def test_elapsed_time_as_the_prediction_when_asked():
    policy = bound("infercept", tool_time="elapsed")
    job = idle_job(computed=1000, tool_latency=100.0, tool_started=10.0)
    assert policy.on_tool_call(job, kv_context(now=10.0, **PRESSURE)) is KVAction.PRESERVE
    assert policy.review_idle(job, kv_context(now=11.0, **PRESSURE)) is KVAction.PRESERVE
    assert policy.review_idle(job, kv_context(now=12.0, **PRESSURE)) is KVAction.CACHE


def test_no_swap_while_memory_is_not_needed_even_on_an_idle_engine():
    # Alone on the device (1000 tokens = 250 blocks), host free: a swap would stall nobody,
    # but InferCept's code swaps only passively (when memory is needed). A discard costs
    # the job's own recompute, 0.11 * 1000 = 110.
    job = idle_job(computed=1000, tool_latency=0.1, tool_started=0.0)
    alone = kv_context(now=0.0, total=5000, owned=250, host_free=1000)
    assert bound("infercept").on_tool_call(job, alone) is KVAction.PRESERVE  # 100 < 110
    assert bound("infercept", active_swap=True).on_tool_call(job, alone) is KVAction.SWAP
    long_job = idle_job(computed=1000, tool_latency=1.0, tool_started=0.0)
    assert bound("infercept").on_tool_call(long_job, alone) is KVAction.CACHE  # 1000 > 110


def test_strict_variant_discards_hard_and_blocks_at_the_head():
    strict = bound("infercept-strict")
    job = idle_job(computed=1000, tool_latency=5.0, tool_started=10.0)
    assert strict.review_idle(job, kv_context(now=10.0, **PRESSURE)) is KVAction.DISCARD
    assert strict.head_of_line_blocking
    assert bound("infercept").head_of_line_blocking
    assert not bound("infercept", skip_unfit=True).head_of_line_blocking


def test_memory_needed_takes_a_preserved_context_by_swapping_it():
    sched, ex = scheduler("infercept", num_device_blocks=16), FakeExecutor(step_time=0.001)
    sched.add_job(make_job("a", [(40, 1), (4, 2)], tool_latency=0.01), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    job = sched.jobs["a"]
    assert job.kv_location is KVLocation.DEVICE  # preserved: 0.01 s x 41 < the discard waste
    sched.add_job(make_job("b", [(40, 10)]), now)  # needs a's memory while a's tool runs
    step(sched, ex, now)
    assert job.kv_location is KVLocation.HOST  # taken back for b, by a swap
    assert sched.jobs["b"].status is JobStatus.RUNNING


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
