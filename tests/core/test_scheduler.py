"""The scheduler mechanism with a hand-built executor: no model, no cost profile."""

import pytest

from astraea.core import (
    JobStatus,
    KVAction,
    KVLocation,
    Policy,
    Scheduler,
    SchedulerConfig,
    StepResult,
    TransitionError,
)
from tests.fakes import FakeExecutor, make_job


class Always(Policy):
    """Test policy: one KV action for every tool call and preemption."""

    name = "always"

    def __init__(self, action: KVAction, preempt: KVAction = KVAction.DISCARD) -> None:
        self.action, self.preempt = action, preempt

    def on_tool_call(self, job, kv):
        return self.action

    def on_preempt(self, job, kv):
        return self.preempt


def config(**kw):
    base = dict(
        num_device_blocks=64,
        num_host_blocks=64,
        block_size=4,
        max_num_batched_tokens=64,
        max_num_seqs=8,
    )
    base.update(kw)
    return SchedulerConfig(**base)


def step(sched, ex, now):
    plan = sched.schedule(now)
    result = ex.execute(plan)
    now += result.elapsed
    out = sched.update(plan, result, now)
    sched.check_integrity()
    return plan, out, now


def run_until_tool_or_end(sched, ex, now, limit=1000):
    for _ in range(limit):
        _, out, now = step(sched, ex, now)
        if out.tool_calls or out.finished:
            return out, now
    raise AssertionError("no segment ended")


def test_single_job_runs_prefill_decode_tool_and_reuses_cached_context():
    sched, ex = Scheduler(config(), Policy()), FakeExecutor()
    sched.add_job(make_job("a", [(10, 3), (5, 2)]), 0.0)
    plan, out, now = step(sched, ex, 0.0)
    assert [(s.num_computed_before, s.num_new_tokens, s.samples) for s in plan.seqs] == [
        (0, 10, True)
    ]
    out, now = run_until_tool_or_end(sched, ex, now)
    job = sched.jobs["a"]
    assert [t.name for _, t in out.tool_calls] == ["tool"]
    assert job.status == JobStatus.TOOL_WAIT and job.kv_location == KVLocation.CACHED
    # Context 13 tokens (10 in, 3 out), 12 computed: 3 full blocks of 4 stay cached.
    assert sched.kv.cached_tokens("a") == 12
    sched.on_tool_result("a", now + 1.0)
    plan, out, now = step(sched, ex, now + 1.0)
    # Next call: context 13 + 5 = 18; 12 reused, 6 computed (last output token + tool result).
    assert [(s.num_computed_before, s.num_new_tokens) for s in plan.seqs] == [(12, 6)]
    out, now = run_until_tool_or_end(sched, ex, now)
    assert out.finished and job.status == JobStatus.FINISHED and job.num_generated_total == 5
    assert job.num_recomputed_tokens == 0 and sched.kv.num_free_device_blocks == 64


def test_chunked_prefill_respects_token_budget():
    sched, ex = Scheduler(config(max_num_batched_tokens=32), Policy()), FakeExecutor()
    sched.add_job(make_job("a", [(100, 2)]), 0.0)
    chunks, now = [], 0.0
    while sched.jobs["a"].status != JobStatus.FINISHED:
        plan, _, now = step(sched, ex, now)
        chunks.append((plan.seqs[0].num_new_tokens, plan.seqs[0].samples))
    assert chunks == [(32, False), (32, False), (32, False), (4, True), (1, True)]


def test_without_chunked_prefill_a_long_prompt_never_runs_partially():
    sched = Scheduler(config(max_num_batched_tokens=32, enable_chunked_prefill=False), Policy())
    sched.add_job(make_job("a", [(100, 2)]), 0.0)
    assert sched.schedule(0.0).is_empty


def test_max_num_seqs_and_fcfs_admission():
    sched = Scheduler(config(max_num_seqs=2), Policy())
    for i in range(4):
        sched.add_job(make_job(f"j{i}", [(4, 5)], arrival=i * 0.1), i * 0.1)
    plan = sched.schedule(1.0)
    assert [s.job_id for s in plan.seqs] == ["j0", "j1"]
    assert len(sched.waiting) == 2


def test_preemption_by_recompute_frees_the_newest_running_job():
    # 6 blocks of 4 tokens; two jobs each needing 4+ blocks cannot both finish in memory.
    sched, ex = Scheduler(config(num_device_blocks=6), Policy()), FakeExecutor()
    sched.add_job(make_job("old", [(8, 10)]), 0.0)
    sched.add_job(make_job("new", [(8, 10)], arrival=0.01), 0.01)
    now = 0.01
    while sched.num_unfinished:
        _, _, now = step(sched, ex, now)
    new, old = sched.jobs["new"], sched.jobs["old"]
    assert new.num_preemptions >= 1 and old.num_preemptions == 0
    assert sched.counters.preemptions >= 1
    assert new.num_recomputed_tokens > 0 and old.finish_time < new.finish_time


@pytest.mark.parametrize(
    ("action", "kept_tokens", "location"),
    [
        (KVAction.PRESERVE, 12, KVLocation.DEVICE),
        (KVAction.SWAP, 12, KVLocation.HOST),
        (KVAction.DISCARD, 0, KVLocation.NONE),
    ],
)
def test_tool_call_kv_actions(action, kept_tokens, location):
    sched, ex = Scheduler(config(), Always(action)), FakeExecutor()
    sched.add_job(make_job("a", [(10, 3), (5, 2)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    job = sched.jobs["a"]
    assert job.kv_location == location
    if action is KVAction.SWAP:
        assert sched.kv.host_tokens("a") == 12
    sched.on_tool_result("a", now + 1)
    plan, _, now = step(sched, ex, now + 1)
    if action is KVAction.SWAP:
        # The swap-out copy rides on the first plan after the tool call, the swap-in too.
        assert [c.job_id for c in plan.swap_out] == ["a"]
        assert [c.num_tokens for c in plan.swap_in] == [12]
    assert plan.seqs[0].num_computed_before == kept_tokens
    run_until_tool_or_end(sched, ex, now)
    assert job.status == JobStatus.FINISHED
    assert job.num_recomputed_tokens == (12 if action is KVAction.DISCARD else 0)


def test_swap_falls_back_to_discard_when_host_is_full():
    sched, ex = Scheduler(config(num_host_blocks=1), Always(KVAction.SWAP)), FakeExecutor()
    sched.add_job(make_job("a", [(10, 3), (5, 2)]), 0.0)
    run_until_tool_or_end(sched, ex, 0.0)
    assert sched.jobs["a"].kv_location == KVLocation.NONE
    assert sched.counters.swap_fallbacks == 1


def test_preserved_contexts_are_dropped_when_nothing_else_can_run():
    sched, ex = Scheduler(config(num_device_blocks=8), Always(KVAction.PRESERVE)), FakeExecutor()
    sched.add_job(make_job("a", [(20, 4), (4, 2)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)  # "a" holds 6 of 8 blocks in its tool call
    sched.add_job(make_job("b", [(20, 2)]), now)
    plan, _, now = step(sched, ex, now)
    assert [s.job_id for s in plan.seqs] == ["b"]
    assert sched.counters.reclaimed_preserved == 1
    assert sched.jobs["a"].kv_location == KVLocation.NONE  # Always(...) discards on preempt


def test_job_first_orders_a_returning_call_before_younger_jobs():
    from astraea.policies import make_policy

    for policy, first in [("vllm-fcfs", "young"), ("fcfs-job", "old")]:
        sched, ex = Scheduler(config(max_num_seqs=1), make_policy(policy)), FakeExecutor()
        sched.add_job(make_job("old", [(4, 2), (4, 2)]), 0.0)
        _, now = run_until_tool_or_end(sched, ex, 0.0)
        sched.add_job(make_job("young", [(4, 2)], arrival=now), now)
        sched.on_tool_result("old", now + 0.5)
        plan = sched.schedule(now + 0.5)
        assert [s.job_id for s in plan.seqs] == [first], policy


def test_multi_step_decode_plan_and_partial_execution():
    sched = Scheduler(config(max_steps_per_plan=50), Policy())
    sched.add_job(make_job("a", [(4, 20)]), 0.0)
    sched.add_job(make_job("b", [(4, 8)]), 0.0)
    plan = sched.schedule(0.0)
    sched.update(plan, StepResult(0.01), 0.01)
    plan = sched.schedule(0.01)
    assert plan.num_steps == 7  # "b" has 7 tokens left: the stretch stops where it finishes
    sched.update(plan, StepResult(0.03, num_steps=3), 0.04)  # an outside event cut it short
    sched.check_integrity()
    assert sched.jobs["b"].num_output_tokens == 4 and sched.jobs["a"].num_output_tokens == 4
    plan = sched.schedule(0.04)
    sched.update(plan, StepResult(0.04, num_steps=plan.num_steps), 0.08)
    assert sched.jobs["b"].status == JobStatus.FINISHED


def test_bad_jobs_and_bad_results_are_refused():
    sched = Scheduler(config(num_device_blocks=2), Policy())
    with pytest.raises(ValueError, match="more than the KV cache holds"):
        sched.add_job(make_job("huge", [(100, 2)]), 0.0)
    sched.add_job(make_job("a", [(4, 2)]), 0.0)
    with pytest.raises(ValueError, match="already added"):
        sched.add_job(make_job("a", [(4, 2)]), 0.0)
    plan = sched.schedule(0.0)
    with pytest.raises(ValueError, match="steps"):
        sched.update(plan, StepResult(0.1, num_steps=2), 0.1)
    with pytest.raises(TransitionError, match="expected TOOL_WAIT"):
        sched.on_tool_result("a", 0.2)


def test_end_job_frees_every_tier_and_drops_a_pending_swap():
    sched, ex = Scheduler(config(), Always(KVAction.SWAP)), FakeExecutor()
    sched.add_job(make_job("a", [(10, 3), (5, 2)]), 0.0)
    _, now = run_until_tool_or_end(sched, ex, 0.0)
    assert sched.kv.host_blocks("a") > 0
    sched.end_job("a", now)
    sched.check_integrity()
    assert sched.jobs["a"].status == JobStatus.FINISHED and sched.num_unfinished == 0
    assert sched.kv.host.num_free == 64 and sched.kv.num_free_device_blocks == 64
    assert sched.schedule(now).swap_out == []
    sched.add_job(make_job("b", [(4, 2)]), now)
    sched.schedule(now)
    sched.add_job(make_job("c", [(4, 2)]), now)
    assert sched.jobs["b"].status == JobStatus.RUNNING
    assert sched.jobs["c"].status == JobStatus.WAITING
    sched.end_job("b", now)  # mid-call
    sched.end_job("c", now)  # still queued
    sched.check_integrity()
    assert sched.running == [] and len(sched.waiting) == 0 and sched.num_unfinished == 0
    assert sched.kv.num_free_device_blocks == 64
    with pytest.raises(TransitionError, match="end_early"):
        sched.end_job("b", now)
