import pytest

from astraea.core import Job, JobStatus, KVAction, KVLocation
from tests.fakes import FakeExecutor, make_job
from tests.policies.helpers import (
    SERVICE,
    bound,
    idle_job,
    kv_context,
    run_until_tool_or_end,
    scheduler,
    step,
)


def test_remaining_work_counts_every_later_call_exactly():
    policy = bound("srpt-oracle")
    job = Job(spec=make_job("a", [(10, 3), (6, 4), (5, 2)]))
    job.num_context_tokens = 10
    s = SERVICE
    expected = (
        s.prefill_time(10) + s.decode_time(3, 10)
        + s.prefill_time(6, 13) + s.decode_time(4, 19)
        + s.prefill_time(5, 23) + s.decode_time(2, 28)
    )  # fmt: skip
    assert policy.remaining_work(job) == pytest.approx(expected)
    # In its second call, 2 tokens generated, the first call is gone from the sum.
    job.segment_index, job.num_output_tokens, job.max_output_tokens = 1, 2, 4
    job.num_context_tokens = job.num_computed_tokens = 21
    expected = s.decode_time(2, 21) + s.prefill_time(5, 23) + s.decode_time(2, 28)
    assert policy.remaining_work(job) == pytest.approx(expected)


def test_job_with_less_total_work_first_even_if_its_current_call_is_longer():
    policy = bound("srpt-oracle")
    chatty = Job(spec=make_job("chatty", [(4, 2)] * 6))  # short calls, many of them
    chatty.num_context_tokens = 4
    single = Job(spec=make_job("single", [(40, 8)]))  # one longer call
    single.num_context_tokens = 40
    assert policy.remaining_work(single) < policy.remaining_work(chatty)
    assert min([chatty, single], key=lambda j: policy.priority(j, 0.0)) is single


def test_preserve_below_the_watermark_least_waste_with_the_exact_time_above():
    policy = bound("srpt-oracle", watermark=0.9, use_swap=True)
    job = idle_job(computed=1000, tool_latency=5.0)
    low = kv_context(now=0.0, total=5000, owned=(1000 + 10_000) // 4)  # 55% owned
    assert policy.on_tool_call(job, low) is KVAction.PRESERVE
    high = kv_context(now=0.0, total=3000, owned=(1000 + 10_000) // 4)  # 92% owned
    # 5 s x 1000 tokens to keep vs 0.02 s x 10000 to swap out and back.
    assert policy.on_tool_call(job, high) is KVAction.SWAP
    near_return = kv_context(now=4.9, total=3000, owned=(1000 + 10_000) // 4)
    assert policy.review_idle(job, near_return) is KVAction.PRESERVE  # 0.1 s x 1000 < 200
    no_host = kv_context(now=0.0, total=3000, owned=(1000 + 10_000) // 4, host_free=0)
    assert policy.on_tool_call(job, no_host) is KVAction.CACHE  # lazy discard
    idle = kv_context(now=0.0, total=3000, owned=(1000 + 10_000) // 4, memory_bound=False)
    assert policy.on_tool_call(job, idle) is KVAction.PRESERVE  # nobody waits for memory
    no_swap = bound("srpt-oracle", watermark=0.9)
    assert no_swap.on_tool_call(job, high) is KVAction.CACHE  # swapping is off by default


def test_prefetch_exactly_when_the_swap_in_would_end_at_the_return():
    policy = bound("srpt-oracle", prefetch_margin=0.0)
    job = idle_job(computed=1000, tool_latency=5.0)
    job.kv_location, job.num_computed_tokens = KVLocation.HOST, 0
    swap_in = SERVICE.swap_time(1000)  # 0.01 s
    assert not policy.prefetch(job, kv_context(now=5.0 - swap_in - 0.001))
    assert policy.prefetch(job, kv_context(now=5.0 - swap_in))


def test_swapped_context_is_back_before_the_tool_returns():
    sched = scheduler(
        "srpt-oracle",
        {"watermark": 0.0, "use_swap": True},
        num_device_blocks=40,
        max_num_batched_tokens=128,
    )
    ex = FakeExecutor(step_time=0.01)  # steps finer than the prefetch window (0.02 s)
    sched.add_job(make_job("a", [(40, 1), (4, 2)], tool_latency=1.0), 0.0)
    sched.add_job(make_job("b", [(60, 80)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    a = sched.jobs["a"]
    # A third job that cannot fit makes admission memory-bound, so the idle context goes.
    sched.add_job(make_job("c", [(100, 1)]), now)
    for _ in range(3):
        if a.kv_location is KVLocation.HOST:
            break
        _, _, now = step(sched, ex, now)
    assert a.status == JobStatus.TOOL_WAIT and a.kv_location is KVLocation.HOST
    returns = a.tool_started + 1.0
    while now < returns - 1e-9:
        if now < returns - 0.1:
            assert a.kv_location is KVLocation.HOST  # not brought back too early
        _, _, now = step(sched, ex, now)
    assert a.kv_location is KVLocation.DEVICE and sched.counters.prefetched_blocks > 0
