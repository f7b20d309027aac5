"""The job state machine: each transition moves a job it may move, and refuses the rest."""

from __future__ import annotations

import pytest

from astraea.core import lifecycle
from astraea.core.job import Job, JobSpec, JobStatus, KVLocation, Segment, ToolCall
from astraea.core.lifecycle import TransitionError

TOOL = ToolCall("search", 2.0)


def two_calls() -> Job:
    spec = JobSpec("j", 1.0, "test", (Segment(10, 4, TOOL), Segment(6, 3)))
    return lifecycle.arrive(spec, 1.0)


def running(job: Job, now: float = 2.0, computed: int = 0) -> Job:
    lifecycle.admit(job, now, computed)
    return job


def in_tool_wait(job: Job) -> Job:
    running(job)
    lifecycle.book_compute(job, 0, 10)
    lifecycle.book_output(job, 4, 3.0)
    lifecycle.stop_on_tool(job, 3.0)
    return job


def test_a_trace_job_walks_through_every_transition() -> None:
    job = two_calls()
    assert (job.status, job.ready_since, job.num_context_tokens) == (JobStatus.WAITING, 1.0, 10)
    running(job, now=2.5)
    assert job.status is JobStatus.RUNNING and job.kv_location is KVLocation.DEVICE
    assert job.total_waiting_time == 1.5
    assert lifecycle.book_compute(job, 0, 10) == 0
    lifecycle.book_output(job, 4, 3.0)
    assert (job.num_context_tokens, job.num_output_tokens, job.first_token_time) == (14, 4, 3.0)
    lifecycle.stop_on_tool(job, 3.0)
    lifecycle.keep_kv(job)  # preserved through the tool call
    lifecycle.tool_returns(job, 5.0)
    assert job.total_tool_time == 2.0 and job.segment_index == 0  # still shows its call
    lifecycle.resume(job, 5.0)
    assert (job.segment_index, job.num_context_tokens, job.max_output_tokens) == (1, 20, 3)
    assert job.status is JobStatus.WAITING and job.waiting_since == 5.0
    running(job, now=5.0, computed=14)
    lifecycle.finish(job, 6.0)
    assert job.status is JobStatus.FINISHED and job.jct == 5.0
    assert job.kv_location is KVLocation.NONE and job.num_computed_tokens == 0


def test_preemption_needs_a_running_job_whose_kv_is_released() -> None:
    job = running(two_calls())
    lifecycle.book_compute(job, 0, 8)
    with pytest.raises(TransitionError, match="preempt"):
        lifecycle.preempt(job, 3.0)  # its KV is still on the device
    lifecycle.release_kv(job, KVLocation.HOST)
    lifecycle.preempt(job, 3.0)
    assert (job.status, job.num_preemptions, job.num_computed_tokens) == (JobStatus.WAITING, 1, 0)
    with pytest.raises(TransitionError, match="preempt"):
        lifecycle.preempt(job, 4.0)  # not running


def test_recompute_is_counted_against_the_high_water_mark() -> None:
    job = running(two_calls())
    assert lifecycle.book_compute(job, 0, 8) == 0
    lifecycle.release_kv(job, KVLocation.NONE)
    lifecycle.preempt(job, 3.0)
    running(job, now=4.0)
    assert lifecycle.book_compute(job, 0, 10) == 8  # 8 of 10 were computed before
    assert job.num_recomputed_tokens == 8 and job.kv_high_water == 10


@pytest.mark.parametrize(
    ("transition", "state"),
    [
        (lambda j: lifecycle.admit(j, 0.0, 0), "running"),
        (lambda j: lifecycle.admit(j, 0.0, 0), "tool_wait"),
        (lambda j: lifecycle.stop_on_tool(j, 0.0), "waiting"),
        (lambda j: lifecycle.finish(j, 0.0), "running"),  # its call ends in a tool
        (lambda j: lifecycle.finish(j, 0.0), "tool_wait"),
        (lambda j: lifecycle.tool_returns(j, 0.0), "running"),
        (lambda j: lifecycle.resume(j, 0.0), "waiting"),
        (lambda j: lifecycle.keep_kv(j), "running"),
        (lambda j: lifecycle.keep_kv(j), "waiting"),  # no KV on the device
        (lambda j: lifecycle.release_kv(j, KVLocation.CACHED), "waiting"),
        (lambda j: lifecycle.release_kv(j, KVLocation.DEVICE), "running"),
        (lambda j: lifecycle.prefetched(j, 4), "tool_wait"),  # its KV is not on the host
        (lambda j: lifecycle.end_early(j, 0.0), "finished"),
        (lambda j: lifecycle.revise_call(j, Segment(10, 4)), "finished"),
    ],
)
def test_each_precondition_violated_raises(transition, state) -> None:
    job = two_calls()
    if state == "running":
        running(job)
    elif state == "tool_wait":
        in_tool_wait(job)
    elif state == "finished":
        lifecycle.end_early(job, 0.0)
    before = (job.status, job.kv_location, job.num_computed_tokens, list(job.segments))
    with pytest.raises(TransitionError):
        transition(job)
    assert (job.status, job.kv_location, job.num_computed_tokens, list(job.segments)) == before


def test_an_open_ended_job_learns_its_calls_as_they_come() -> None:
    first = Segment(10, 4, ToolCall("tool", 0.0))
    job = lifecycle.arrive(JobSpec("o", 0.0, "served", (first,), open_ended=True), 0.0)
    in_tool_wait(job)
    lifecycle.revise_call(job, Segment(10, 4, TOOL))  # the answer named the tool
    assert job.segment.tool == TOOL and job.spec.segments == (first,)  # the spec stays
    with pytest.raises(TransitionError, match="input"):
        lifecycle.revise_call(job, Segment(11, 4, TOOL))
    lifecycle.tool_returns(job, 1.0)
    with pytest.raises(TransitionError, match="no next call"):
        lifecycle.resume(job, 1.0)
    lifecycle.resume(job, 1.0, Segment(5, 2))
    assert len(job.segments) == 2 and job.num_context_tokens == 19 and job.is_last_segment
    running(job, computed=14)
    lifecycle.finish(job, 2.0)
    assert job.status is JobStatus.FINISHED


def test_a_known_next_call_cannot_be_replaced() -> None:
    job = in_tool_wait(two_calls())
    with pytest.raises(TransitionError, match="already knows"):
        lifecycle.resume(job, 4.0, Segment(1, 1))


def test_swapped_kv_comes_back_before_the_job_runs() -> None:
    job = in_tool_wait(two_calls())
    lifecycle.release_kv(job, KVLocation.HOST)
    assert job.num_computed_tokens == 0
    lifecycle.prefetched(job, 14)
    assert job.kv_location is KVLocation.DEVICE and job.num_computed_tokens == 14


def test_open_ended_spec_may_end_in_a_tool_and_a_trace_may_not() -> None:
    with pytest.raises(ValueError, match="last segment"):
        JobSpec("t", 0.0, "trace", (Segment(1, 1, TOOL),))
    assert JobSpec("t", 0.0, "served", (Segment(1, 1, TOOL),), open_ended=True).open_ended


def test_a_refused_continuation_books_nothing() -> None:
    from astraea.core import Policy, Scheduler, SchedulerConfig, StepResult

    sched = Scheduler(SchedulerConfig(num_device_blocks=16), Policy())
    sched.add_job(JobSpec("j", 0.0, "test", (Segment(10, 1, TOOL), Segment(6, 3))), 0.0)
    plan = sched.schedule(0.0)
    sched.update(plan, StepResult(0.1), 0.1)
    job = sched.jobs["j"]
    with pytest.raises(TransitionError, match="already knows"):
        sched.on_tool_result("j", 2.0, Segment(5, 5))  # a trace job knows its next call
    assert (job.status, job.total_tool_time, job.segment_index) == (JobStatus.TOOL_WAIT, 0.0, 0)
    sched.on_tool_result("j", 2.0)
    assert job.status is JobStatus.WAITING and job.total_tool_time == pytest.approx(1.9)
