import pytest

from astraea.core import Job, JobStatus, KVAction, KVLocation
from tests.fakes import make_job
from tests.policies.helpers import SERVICE, bound, idle_job, kv_context


def waiting(job_id: str, calls, since: float = 0.0, latency: float = 1.0) -> Job:
    job = Job(spec=make_job(job_id, calls, tool_latency=latency))
    job.num_context_tokens = calls[0][0]
    job.status, job.ready_since, job.waiting_since = JobStatus.WAITING, since, since
    return job


def test_memory_time_of_a_final_call():
    policy = bound("lamps")
    job = waiting("a", [(100, 10)])
    # prefill 100 tokens: 0.01 + 0.01 s holding 100; decode 10 tokens: 0.1 s holding ~105.
    assert policy.memory_time(job) == pytest.approx(0.02 * 100 + 0.1 * 105)


def test_smaller_memory_time_first_and_the_api_call_counts():
    policy = bound("lamps")
    small = waiting("small", [(100, 10)])
    big = waiting("big", [(400, 40)])
    tool = waiting("tool", [(100, 10), (4, 2)])  # same call, then an API call
    ranked = sorted([big, tool, small], key=lambda j: policy.priority(j, 0.0))
    assert [j.job_id for j in ranked] == ["small", "tool", "big"]
    # Idle engine, cold start (1 s API): preserving 110 tokens for 1 s wastes more than the
    # recompute (0.021 s x 110), so the API phase counts as a discard and recompute.
    extra = policy.memory_time(tool) - policy.memory_time(small)
    assert extra == pytest.approx(110 * SERVICE.prefill_time(110))


def test_starving_call_jumps_ahead_and_resumed_context_goes_first():
    policy = bound("lamps", starvation_s=30.0)
    big = waiting("big", [(400, 40)], since=0.0)
    small = waiting("small", [(100, 10)], since=20.0)
    assert min([big, small], key=lambda j: policy.priority(j, 29.0)) is small
    assert min([big, small], key=lambda j: policy.priority(j, 30.0)) is big
    resumed = waiting("resumed", [(400, 40)], since=29.0)
    resumed.kv_location = KVLocation.DEVICE
    assert min([big, small, resumed], key=lambda j: policy.priority(j, 30.0)) is resumed


def test_handling_follows_the_predicted_api_time():
    policy = bound("lamps")
    pressure = kv_context(total=5000, owned=(1000 + 10_000) // 4)
    for _ in range(3):
        policy.predictor.observe_tool("tool", 10.0)
    # 10 s x 1000 tokens preserved vs 0.02 s x 10000 tokens to swap out and in.
    assert policy.on_tool_call(idle_job(computed=1000), pressure) is KVAction.SWAP
    quick = bound("lamps")
    for _ in range(3):
        quick.predictor.observe_tool("tool", 0.05)
    assert quick.on_tool_call(idle_job(computed=1000), pressure) is KVAction.PRESERVE


def test_review_releases_when_memory_tightens_during_the_call():
    policy = bound("lamps")
    for _ in range(3):
        policy.predictor.observe_tool("tool", 10.0)
    job = idle_job(computed=1000)

    def alone(now):  # host full: discard wastes 0.11 s x 1000 tokens = 110
        return kv_context(now=now, total=5000, owned=250, host_free=0)

    # 10 s x 1000 > 110: discard, lazily (the blocks stay in the prefix cache)
    assert policy.review_idle(job, alone(0.0)) is KVAction.CACHE
    assert policy.review_idle(job, alone(9.95)) is KVAction.PRESERVE  # 0.05 s x 1000 < 110
    strict = bound("lamps-strict")
    for _ in range(3):
        strict.predictor.observe_tool("tool", 10.0)
    assert strict.review_idle(job, alone(0.0)) is KVAction.DISCARD  # InferCept's engine: freed


def test_variants_skip_unfit_calls_only_when_asked():
    assert bound("lamps").head_of_line_blocking
    assert not bound("lamps", skip_unfit=True).head_of_line_blocking
    assert bound("lamps-strict").head_of_line_blocking
