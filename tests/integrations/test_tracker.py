"""The vLLM plugin's pure logic: job identity, shadow jobs, policy order, pin decisions."""

from __future__ import annotations

import pytest

from astraea.core.admission import fit_first
from astraea.core.job import JobStatus
from astraea.core.policy import KVAction, KVContext, PolicyEnv
from astraea.integrations.tracker import CallInfo, JobTracker, Pin, call_info
from astraea.policies import make_policy
from astraea.predict.service import ServiceTimeModel

SERVICE = ServiceTimeModel(0.025, 3e-4, 0.033, 1e-6, 0.0, 2048)  # fixed, for exact answers


def tracker(policy: str = "astraea", **kw: float) -> JobTracker:
    # Q0's quota at 512 decode tokens, so that a 600-token answer demotes its job.
    chosen = make_policy(policy, **({"base_quantum": 512} if policy == "astraea" else {}))
    chosen.bind(PolicyEnv(SERVICE))
    return JobTracker(chosen, **kw)


def kv(now: float, owned: int = 0, total: int = 100, bound: bool = False) -> KVContext:
    return KVContext(now, 128, total, owned, 0, memory_bound=bound)


def call(rid: str, job: str, prompt: int, out: int, last: bool | None) -> CallInfo:
    return CallInfo(rid, job, prompt, out, last)


def run_call(t: JobTracker, c: CallInfo, start: float, end: float, **kv_kw: object):
    """Arrive at ``start``, admitted at once, generate all tokens, end at ``end``."""
    t.arrive(c, start)
    t.admitted(c.request_id, start)
    t.sync(c.request_id, c.prompt_tokens + c.max_tokens, c.prompt_tokens, c.max_tokens)
    return t.finished(c.request_id, end, kv(end, **kv_kw))  # type: ignore[arg-type]


def test_job_identity_prefers_xargs_then_session_then_priority() -> None:
    xargs = {"astraea_job_id": "agent-1", "astraea_last": 0, "astraea_tool": "search"}
    info = call_info("r1", xargs, "sess", 3, 100, 16)
    assert (info.job_id, info.last, info.tool) == ("agent-1", False, "search")
    assert call_info("r1", {"astraea_last": "true"}, "sess", 0, 1, 1).job_id == "session:sess"
    assert call_info("r1", {"astraea_last": "true"}, "sess", 0, 1, 1).last is True
    assert call_info("r1", None, None, 7, 1, 1).job_id == "priority:7"
    alone = call_info("r1", None, None, 0, 0, 0)
    assert (alone.job_id, alone.last, alone.prompt_tokens, alone.max_tokens) == ("r1", True, 1, 1)
    assert call_info("r", {"astraea_tool_latency": 2}, None, 0, 1, 1).tool_latency == 2.0


def test_calls_of_a_job_share_one_shadow_job_and_feed_the_policy() -> None:
    t = tracker()
    tracked, action = run_call(t, call("r0", "A", 100, 600, False), 0.0, 1.0)
    assert tracked is not None and action is KVAction.PRESERVE  # memory idle: keep the KV
    job = tracked.job
    assert job.status == JobStatus.TOOL_WAIT and tracked.level == 1  # ~600 decode steps > quota 512
    assert job.segment.tool is not None and not job.is_last_segment
    t.arrive(call("r1", "A", 770, 8, True), 3.0)
    assert t.get("r1") is tracked and job.segment_index == 1
    assert job.segment.input_tokens == 770 - 700 and job.total_tool_time == pytest.approx(2.0)
    assert job.status == JobStatus.WAITING
    t.admitted("r1", 4.0)
    assert job.total_waiting_time == pytest.approx(1.0)
    t.sync("r1", 778, 770, 8)
    done, action = t.finished("r1", 5.0, kv(5.0))
    assert done is tracked and action is None and job.status == JobStatus.FINISHED
    assert "A" not in t.jobs and not t.calls


def test_short_new_job_overtakes_a_demoted_jobs_next_call() -> None:
    t = tracker()
    run_call(t, call("l0", "long", 100, 600, False), 0.0, 1.0)
    t.arrive(call("l1", "long", 760, 16, True), 1.1)  # arrives first...
    t.arrive(call("s0", "short", 40, 16, True), 2.0)
    order = t.order(["l1", "s0", "unknown"], 3.0)
    assert order == [1, 0, 2]  # ...but level 1 waits behind a level-0 job; unknown go last
    fcfs = tracker("vllm-fcfs")
    run_call(fcfs, call("l0", "long", 600, 32, False), 0.0, 1.0)
    fcfs.arrive(call("l1", "long", 660, 16, True), 1.1)
    fcfs.arrive(call("s0", "short", 40, 16, True), 2.0)
    assert fcfs.order(["l1", "s0"], 3.0) == [0, 1]


def test_hrrn_prefers_the_shorter_call_within_a_level() -> None:
    t = tracker()
    t.arrive(call("big", "a", 400, 200, True), 0.0)
    t.arrive(call("small", "b", 40, 16, True), 0.5)
    assert t.order(["big", "small"], 1.0) == [1, 0]


def test_a_parallel_call_of_a_busy_job_becomes_its_own_job() -> None:
    t = tracker()
    t.arrive(call("r0", "A", 10, 5, False), 0.0)
    second = t.arrive(call("r1", "A", 10, 5, False), 0.1)
    assert second.job.job_id == "A/r1" and second.call.last is True
    assert t.get("r0") is t.jobs["A"]


def test_unknown_last_flag_waits_for_a_next_call_and_abort_ends_the_job() -> None:
    t = tracker()
    tracked, action = run_call(t, call("r0", "A", 10, 5, None), 0.0, 1.0)
    assert tracked is not None and tracked.job.status == JobStatus.TOOL_WAIT
    t.arrive(call("r1", "A", 30, 5, None), 2.0)
    done, action = t.finished("r1", 2.5, kv(2.5), aborted=True)
    assert done is tracked and action is None and "A" not in t.jobs
    assert t.finished("nobody", 3.0, kv(3.0)) == (None, None)


def test_review_releases_pins_on_ttl_policy_and_forgets_stale_jobs() -> None:
    t = tracker(pin_ttl=5.0, job_ttl=50.0)
    a, _ = run_call(t, call("a0", "A", 200, 10, False), 0.0, 1.0)
    b, _ = run_call(t, call("b0", "B", 200, 10, False), 0.0, 1.0)
    assert a is not None and b is not None
    a.pin, b.pin = Pin(["x"], 1.0, 128), Pin(["y", "z"], 1.0, 256)
    assert t.num_pinned_blocks == 3
    assert t.review(kv(2.0)) == []
    # Memory is the bound and almost all of it is owned: a long tool wait is not worth it.
    assert t.review(kv(3.0, owned=99, bound=True)) == []  # tools so far took ~1 s
    for _ in range(20):
        t.policy.predictor.observe_tool("tool", 100.0)  # type: ignore[attr-defined]
    released = t.review(kv(3.0, owned=99, bound=True))
    assert [(tr.job.job_id, r) for tr, r in released] == [
        ("A", "policy:cache"),
        ("B", "policy:cache"),
    ]
    assert [tr.job.job_id for tr, _ in t.review(kv(7.0))] == ["A", "B"]
    assert all(r == "ttl" for _, r in t.review(kv(7.0)))
    gone = t.review(kv(60.0))
    assert [(tr.job.job_id, r) for tr, r in gone] == [("A", "job_ttl"), ("B", "job_ttl")]
    assert t.jobs == {}


def test_reclaim_order_and_forget_all() -> None:
    t = tracker()
    a, _ = run_call(t, call("a0", "A", 50, 5, False), 0.0, 1.0)
    b, _ = run_call(t, call("b0", "B", 50, 5, False), 0.0, 2.0)
    assert a is not None and b is not None
    a.pin, b.pin = Pin([1], 1.0, 128), Pin([2], 2.0, 128)
    assert [x.job.job_id for x in t.reclaim_order(kv(3.0))] == ["A", "B"]  # oldest tool first
    assert [x.job.job_id for x in t.reclaim_order(kv(3.0), spare="A")] == ["B"]
    assert {x.job.job_id for x in t.forget_all()} == {"A", "B"} and not t.jobs


def test_fit_first_moves_what_does_not_fit_behind() -> None:
    assert fit_first([0, 1, 2, 3], [5, 1, 1, 9], 3, False, max_skips=8) == [1, 2, 0, 3]
    # The core's rule: the max_skips-th call that does not fit ends the round.
    assert fit_first([0, 1, 2], [5, 5, 1], 3, False, max_skips=2) == [0, 1, 2]
    assert fit_first([0, 1, 2], [5, 5, 1], 3, False, max_skips=3) == [2, 0, 1]
    assert fit_first([2, 0, 1], [1, 1, 1], 10, False, max_skips=0) == [2, 0, 1]
    assert fit_first([0, 1, 2], [5, 1, 1], 3, True, max_skips=0) == [0, 1, 2]  # vLLM's rule
