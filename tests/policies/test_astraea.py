"""The astraea policy's rules on hand-made cases: MLFQ moves, aging, enhanced HRRN, and the
adaptive KV choice."""

import dataclasses

import pytest

from astraea.core import Job, JobStatus, KVAction, KVContext, PolicyEnv, Scheduler, SchedulerConfig
from astraea.core.job import KVLocation
from astraea.policies import make_policy
from astraea.policies.mlfq import ClaimScale, Quotas
from astraea.predict import ServiceTimeModel
from tests.fakes import FakeExecutor, make_job

SERVICE = ServiceTimeModel(
    step_overhead=0.01,
    prefill_per_token=1e-4,
    decode_per_token=0.02,
    kv_read_per_token=0.0,
    swap_per_token=5e-5,
)


def bound(**params):
    policy = make_policy("astraea", **params)
    policy.bind(PolicyEnv(SERVICE))
    return policy


def job(job_id="a", calls=((100, 10), (50, 10)), tool=1.0, level=0):
    j = Job(spec=make_job(job_id, list(calls), tool_latency=tool))
    j.policy_state["level"] = level
    return j


def kv(owned=900, total=1000, waiting=True, host_free=1000, now=0.0):
    return KVContext(
        now=now,
        block_size=16,
        device_blocks_total=total,
        device_blocks_owned=owned,
        host_blocks_free=host_free,
        memory_bound=waiting,
    )


def run_to_tool_wait(sched: Scheduler, job_id: str, now: float = 0.0) -> float:
    """Step the scheduler (50 ms per step) until ``job_id`` waits on its tool; the time then."""
    ex = FakeExecutor(step_time=0.05)
    while sched.jobs[job_id].status != JobStatus.TOOL_WAIT:
        plan = sched.schedule(now)
        now += 0.05
        sched.update(plan, ex.execute(plan), now)
    return now


def test_expensive_call_demotes_and_early_tool_yield_promotes():
    policy = bound(base_quantum=100, quantum_growth=2.0, num_queues=3, call_cost="tokens")
    heavy = job(calls=((150, 10), (5, 5)))  # cost 160 > quota 100 of Q0
    heavy.num_output_tokens = 10
    assert policy.on_segment_end(heavy, 1.0) == {"level": 1, "compute_intensive": 1}
    light = job(calls=((150, 10), (5, 5)), level=1)  # cost 160 <= quota 200 of Q1, ends in a tool
    light.num_output_tokens = 10
    assert policy.on_segment_end(light, 1.0) == {"level": 0, "compute_intensive": 0}
    bottom = job(calls=((900, 10), (5, 5)), level=2)
    bottom.num_output_tokens = 10
    assert policy.on_segment_end(bottom, 1.0)["level"] == 2  # no queue below the last


def test_higher_queue_first_then_highest_response_ratio():
    policy = bound(hrrn_wait="queued")
    now = 10.0
    a, b, c = job("a"), job("b"), job("c", level=1)
    for j, waited_since in ((a, 9.0), (b, 5.0), (c, 0.0)):
        j.status, j.num_context_tokens = JobStatus.WAITING, 100
        j.max_output_tokens, j.waiting_since = 10, waited_since
    order = sorted([a, b, c], key=lambda j: policy.priority(j, now))
    assert [j.job_id for j in order] == ["b", "a", "c"]  # b waited longer; c is in Q1
    # Waiting accumulated in earlier calls counts too (enhanced HRRN).
    a.total_waiting_time = 100.0
    fresh = bound(hrrn_wait="queued")
    assert sorted([a, b], key=lambda j: fresh.priority(j, now))[0] is a


def test_aging_lifts_a_starving_lowest_queue_job_to_q0():
    policy = bound(num_queues=2, aging_ratio=3.0)
    starving = job("s", level=1)
    starving.status, starving.num_context_tokens, starving.max_output_tokens = (
        JobStatus.WAITING,
        100,
        10,
    )
    service = SERVICE.segment_time(100, 10, 0)
    starving.waiting_since = 0.0
    assert policy.priority(starving, now=service)[0] == 1  # ratio 2: still in Q1
    assert policy.priority(starving, now=5 * service)[0] == 0  # ratio 6 > 3: served as Q0


@pytest.mark.parametrize(
    ("tool_latency", "owned", "memory_bound", "expected"),
    [
        (30.0, 500, True, KVAction.PRESERVE),  # below the watermark: keep
        (30.0, 950, False, KVAction.PRESERVE),  # above it, but nobody waits for memory
        (0.001, 950, True, KVAction.PRESERVE),  # tool returns at once: keeping wastes least
        (30.0, 950, True, KVAction.SWAP),  # long tool under pressure: swap beats recompute
    ],
)
def test_kv_choice_at_a_tool_call(tool_latency, owned, memory_bound, expected):
    policy = bound(watermark=0.9, swap_margin=1.0)
    j = job(tool=tool_latency)
    j.status, j.num_computed_tokens = JobStatus.TOOL_WAIT, 1000
    policy.predictor.observe_tool("tool", tool_latency)
    assert policy.on_tool_call(j, kv(owned=owned, waiting=memory_bound)) is expected


def test_without_host_room_or_swapping_a_long_tool_discards_lazily():
    for policy, host_free in (
        (bound(watermark=0.5, use_swap=True), 0),
        (bound(watermark=0.5), 1000),
    ):
        j = job(tool=30.0)
        j.status, j.num_computed_tokens = JobStatus.TOOL_WAIT, 1000
        policy.predictor.observe_tool("tool", 30.0)
        assert policy.on_tool_call(j, kv(owned=950, host_free=host_free)) is KVAction.CACHE


def swapped_out(policy, tool=2.0):
    """A job in a ``tool``-second tool call since t=0 (1,000 tokens of KV), the tool's
    latency learned by ``policy``."""
    j = job(tool=tool)
    j.status, j.tool_started, j.kv_high_water = JobStatus.TOOL_WAIT, 0.0, 1000
    for _ in range(3):
        policy.predictor.observe_tool("tool", tool)
    return j


def test_swapped_context_is_prefetched_just_before_the_predicted_return():
    policy = bound()
    j = swapped_out(policy)
    assert not policy.prefetch(j, kv(now=1.0))
    assert policy.prefetch(j, kv(now=1.98))


def test_ablations_switch_the_parts_off():
    j = job(tool=30.0, level=2)
    j.status, j.num_context_tokens, j.max_output_tokens = JobStatus.WAITING, 100, 10
    assert bound(use_mlfq=False).priority(j, 1.0)[0] == 0
    assert bound(use_hrrn=False).priority(j, 1.0)[1] == j.ready_since
    assert bound(adaptive_kv=False).on_tool_call(j, kv(owned=100)) is KVAction.CACHE
    with pytest.raises(ValueError):
        make_policy("astraea", watermark=2.0)
    with pytest.raises(RuntimeError, match="not bound"):
        make_policy("astraea").priority(j, 0.0)


def test_short_returning_call_overtakes_a_long_new_prompt():
    """End to end through the mechanism: with one slot, the job back from its tool with a
    small call is served before a big new job that arrived earlier, because it has waited
    longer over its life relative to its short call."""
    sched = Scheduler(
        SchedulerConfig(num_device_blocks=400, block_size=16, max_num_seqs=1), bound()
    )
    sched.add_job(make_job("agent", [(200, 5), (10, 5)], tool_latency=0.5), 0.0)
    now = run_to_tool_wait(sched, "agent")
    sched.add_job(make_job("big", [(3000, 200)]), now)
    sched.jobs["agent"].total_waiting_time = 5.0  # it queued a lot earlier in its life
    sched.on_tool_result("agent", now + 0.1)
    plan = sched.schedule(now + 0.1)
    assert [s.job_id for s in plan.seqs] == ["agent"]


@pytest.mark.parametrize("where", ["queued", "tool_wait"])
def test_a_job_ended_early_leaves_no_policy_state(where):
    """A served job can end mid-call or in a tool wait (client gone, agent done): the
    policy's cached priority and the history predictor's per-job record must go with it,
    or a long-running server grows with every such job."""
    policy = bound(predictor="history")
    sched = Scheduler(SchedulerConfig(num_device_blocks=400, block_size=16), policy)
    sched.add_job(make_job("a", [(20, 5), (10, 5)], tool_latency=0.5), 0.0)
    now = run_to_tool_wait(sched, "a")
    if where == "queued":
        sched.on_tool_result("a", now)
        sched.add_job(make_job("b", [(20, 5)]), now)
        policy.priority(sched.jobs["a"], now)  # caches its priority parts
    sched.end_job("a", now)
    assert "a" not in policy._keys
    assert "a" not in policy.predictor.output._by_job


def overlapped(**params):
    """astraea on an executor whose copies run beside compute (a swap stalls nobody)."""
    policy = make_policy("astraea", **params)
    policy.bind(PolicyEnv(dataclasses.replace(SERVICE, swap_stalls_batch=False)))
    return policy


@pytest.mark.parametrize(
    ("tool_latency", "owned", "memory_bound", "expected"),
    [
        (30.0, 500, False, KVAction.PRESERVE),  # memory idle: a swap-in would only delay
        (30.0, 500, True, KVAction.SWAP),  # a call waits for memory: out and back, 0.1 s
        (30.0, 950, False, KVAction.SWAP),  # above the watermark: out before anyone waits
        (30.0, 950, True, KVAction.SWAP),  # a long wait under pressure
        (0.05, 950, True, KVAction.PRESERVE),  # back before a round trip would finish
    ],
)
def test_with_copy_engines_the_host_tier_extends_device_memory(
    tool_latency, owned, memory_bound, expected
):
    policy = overlapped(watermark=0.9)
    j = job(tool=tool_latency)
    j.status, j.num_computed_tokens = JobStatus.TOOL_WAIT, 1000
    policy.predictor.observe_tool("tool", tool_latency)
    assert policy.on_tool_call(j, kv(owned=owned, waiting=memory_bound)) is expected
    serial = bound(watermark=0.9)  # serial copies: either sign of idle memory keeps it
    serial.predictor.observe_tool("tool", tool_latency)
    assert serial.on_tool_call(j, kv(owned=500, waiting=memory_bound)) is KVAction.PRESERVE


def test_with_copy_engines_contexts_come_back_at_admission_which_does_not_skip():
    policy = overlapped()
    j = swapped_out(policy)
    assert not policy.prefetch(j, kv(now=1.98, owned=500, waiting=False))
    assert policy.head_of_line_blocking
    assert not bound().head_of_line_blocking  # serial copies: later calls may go first


def test_service_cost_lets_a_long_prompt_stay_and_demotes_a_long_generation():
    policy = bound(base_quantum=100, num_queues=3)  # call_cost="service", the default
    # 2,000 prompt tokens prefill in 0.21 s: 10.5 decode tokens' worth, + 10 generated.
    retrieved = job(calls=((2000, 10), (5, 5)))
    retrieved.num_computed_tokens, retrieved.num_output_tokens = 2010, 10
    assert policy.on_segment_end(retrieved, 1.0) == {"level": 0, "compute_intensive": 0}
    talker = job(calls=((20, 200), (5, 5)))
    talker.num_computed_tokens, talker.num_output_tokens = 220, 200
    assert policy.on_segment_end(talker, 1.0) == {"level": 1, "compute_intensive": 1}
    literal = bound(base_quantum=100, num_queues=3, call_cost="tokens")
    assert literal.on_segment_end(retrieved, 1.0)["level"] == 1  # the paper's reading demotes


def waiting(job_id, context, computed=0, on_device=False, since=0.0):
    j = job(job_id, calls=((context, 10), (5, 5)))
    j.status, j.num_context_tokens, j.max_output_tokens = JobStatus.WAITING, context, 10
    j.num_computed_tokens, j.waiting_since = computed, since
    if on_device:
        j.kv_location = KVLocation.DEVICE
    return j


def test_hrrn_weighs_service_time_by_the_memory_a_call_claims():
    policy = bound()
    ended = job("done")
    ended.num_context_tokens = 1000
    policy.on_segment_end(ended, 0.0)  # the mean claim is now 1,000 tokens
    # Two returning calls with the same 20 new tokens after 1,000 of context: one kept its
    # KV on the device (claims 30 tokens), one lost it (claims 1,030): same compute time.
    kept = waiting("kept", 1020, computed=1000, on_device=True, since=5.0)
    lost = waiting("lost", 1020, computed=1000, since=0.0)
    lost.kv_location = KVLocation.HOST
    order = sorted([lost, kept], key=lambda j: policy.priority(j, 10.0))
    assert [j.job_id for j in order] == ["kept", "lost"]  # though "lost" waited twice as long
    plain = bound(hrrn_size="time")  # the paper's T: the longer wait goes first
    plain.on_segment_end(ended, 0.0)
    assert sorted([lost, kept], key=lambda j: plain.priority(j, 10.0))[0] is lost


def test_adaptive_quotas_follow_the_quantiles_of_observed_costs():
    quotas = Quotas(base=512, growth=2.0, num_queues=4, adaptive=True)
    assert quotas.quota(0) == 512  # too few samples: the fixed quotas
    for cost in range(1, 101):
        quotas.observe(float(cost))
    assert [quotas.quota(k) for k in range(3)] == [26.0, 51.0, 76.0]
    fixed = Quotas(base=512, growth=2.0, num_queues=4, adaptive=False)
    fixed.observe(1.0)
    assert [fixed.quota(k) for k in range(3)] == [512, 1024, 2048]


def test_claim_scale_counts_only_what_is_not_resident():
    scale = ClaimScale()
    ended = job("done")
    ended.num_context_tokens = 500
    scale.observe(ended)
    j = waiting("w", 500, computed=400, on_device=True)
    assert scale.claim(j, remaining_output=100) / scale.mean == pytest.approx(200 / 500)
    j.kv_location = KVLocation.HOST
    assert scale.claim(j, remaining_output=100) / scale.mean == pytest.approx(600 / 500)


@pytest.mark.parametrize("field", ["call_cost", "quotas", "hrrn_size", "hrrn_wait"])
def test_unknown_queue_options_are_refused(field):
    with pytest.raises(ValueError, match=field):
        make_policy("astraea", **{field: "bogus"})


def test_memory_runs_out_preempts_the_running_call_that_waited_least_for_its_size():
    policy = bound(hrrn_size="time", hrrn_wait="queued")
    quick = job("quick", calls=((10, 2), (5, 5)))  # ~0.05 s of compute, waited 10 s before
    slow = job("slow", calls=((10, 500), (5, 5)))  # ~10 s of compute, never waited
    for j, waited in ((quick, 10.0), (slow, 0.0)):
        j.status, j.num_context_tokens, j.max_output_tokens = JobStatus.RUNNING, 10, 0
        j.max_output_tokens = j.segment.output_tokens
        j.total_waiting_time = waited
    assert policy.preemption_victim([slow, quick], now=100.0) is slow
    assert policy.preemption_victim([quick, slow], now=100.0) is slow


def test_engine_wait_counts_a_jobs_time_queued_or_computing_not_in_tools():
    now = 100.0
    # Same call, same queued time (10 s); "long" has computed for 40 s and used tools for
    # 40 s, "young" arrived 10 s ago. Its queued time alone cannot tell them apart.
    long, young = job("long", calls=((100, 10), (5, 5))), job("young", calls=((100, 10), (5, 5)))
    long.spec = dataclasses.replace(long.spec, arrival=10.0)
    young.spec = dataclasses.replace(young.spec, arrival=90.0)
    long.total_tool_time = 40.0
    for j in (long, young):
        j.status, j.num_context_tokens, j.max_output_tokens = JobStatus.WAITING, 100, 10
        j.waiting_since = 90.0
    queued, engine = bound(hrrn_wait="queued"), bound()  # "engine" is the default
    assert queued.priority(long, now) == queued.priority(young, now)
    assert engine.priority(long, now) < engine.priority(young, now)  # long goes first
    # W = now - arrival - tool time: 50 s against 10 s, so 1 + 50/T against 1 + 10/T.
    (_, r_long), (_, r_young) = engine.priority(long, now), engine.priority(young, now)
    assert (-r_long - 1) == pytest.approx(5 * (-r_young - 1))
    # A running call's W grows with the clock too (it protects old jobs from preemption).
    long.status = JobStatus.RUNNING
    long.revision += 1
    assert engine.priority(long, now + 10)[1] < engine.priority(long, now)[1]
