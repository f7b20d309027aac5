"""The job state machine: every write of a job's status, KV location and token counters.

A job moves through named transitions, each checking where the job is before it moves it
(after vLLM's ``_preempt_request``: one transition, its precondition, its count). The core
scheduler, the idle-KV mechanism and the vLLM plugin's tracker all call these; nobody else
writes ``status``, ``kv_location``, ``num_computed_tokens`` or a job's calls.

    arrive ──> WAITING ──admit──> RUNNING ──finish──────────> FINISHED
                  ^                  │  │
                  └────preempt───────┘  └─stop_on_tool──> TOOL_WAIT
                  └──────────────resume──────────────────────┘
    (end_early: any state but FINISHED -> FINISHED)

Where the KV is (``KVLocation``) moves alongside: DEVICE while running or preserved; a job
that stops running keeps it there (``keep_kv``), or it goes to the prefix cache, the host
tier or nowhere (``release_kv``); ``prefetched`` brings a tool-waiting job's KV back.

Open-ended jobs: a served agent does not know its next call before it comes, so a job's calls
(``Job.segments``) grow as they arrive (``resume`` with the new call) and a call's tool can be
named once the answer shows it (``revise_call``). A trace job simply knows all of them.
"""

from __future__ import annotations

from astraea.core.job import Job, JobSpec, JobStatus, KVLocation, Segment

WAITING, RUNNING, TOOL_WAIT, FINISHED = (
    JobStatus.WAITING,
    JobStatus.RUNNING,
    JobStatus.TOOL_WAIT,
    JobStatus.FINISHED,
)
DEVICE = KVLocation.DEVICE


class TransitionError(ValueError):
    """A transition was asked of a job whose state does not allow it."""


def _refuse(job: Job, transition: str, expected: str) -> TransitionError:
    return TransitionError(
        f"{transition}: job {job.job_id!r} is {job.status.name} (KV {job.kv_location.value}), "
        f"expected {expected}"
    )


# ---- status ----------------------------------------------------------------------------------
def arrive(spec: JobSpec, now: float) -> Job:
    """A job arrives: its first call is ready and queued."""
    job = Job(spec=spec, num_context_tokens=spec.segments[0].input_tokens)
    job.ready_since = job.waiting_since = now
    return job


def admit(job: Job, now: float, computed: int) -> None:
    """WAITING -> RUNNING: the call's KV is on the device up to ``computed`` tokens."""
    if job.status is not WAITING:
        raise _refuse(job, "admit", "WAITING")
    job.revision += 1
    job.total_waiting_time += now - job.waiting_since
    job.status = RUNNING
    job.kv_location = DEVICE
    job.num_computed_tokens = computed


def preempt(job: Job, now: float) -> None:
    """RUNNING -> WAITING, its KV already released (``release_kv``): it queues again."""
    if job.status is not RUNNING or job.kv_location is DEVICE:
        raise _refuse(job, "preempt", "RUNNING with its KV released")
    job.revision += 1
    job.status = WAITING
    job.waiting_since = now
    job.num_preemptions += 1


def stop_on_tool(job: Job, now: float) -> None:
    """RUNNING -> TOOL_WAIT: the call ended in a tool call; the job computes nothing now."""
    if job.status is not RUNNING or job.segment.tool is None:
        raise _refuse(job, "stop_on_tool", "RUNNING in a call that ends in a tool")
    job.revision += 1
    job.status = TOOL_WAIT
    job.tool_started = now


def tool_returns(job: Job, now: float) -> None:
    """The tool returned (the job still shows the call that made it): book the wait."""
    if job.status is not TOOL_WAIT:
        raise _refuse(job, "tool_returns", "TOOL_WAIT")
    job.revision += 1
    job.total_tool_time += now - job.tool_started


def check_resume(job: Job, call: Segment | None = None) -> None:
    """Raise if ``resume(job, _, call)`` would: callers check before the tool's return is
    booked, so a refused continuation changes nothing."""
    if job.status is not TOOL_WAIT:
        raise _refuse(job, "resume", "TOOL_WAIT")
    known = len(job.segments) > job.segment_index + 1
    if call is not None and known:
        raise TransitionError(f"resume: job {job.job_id!r} already knows its next call")
    if call is None and not known:
        raise TransitionError(f"resume: job {job.job_id!r} has no next call; pass it")


def resume(job: Job, now: float, call: Segment | None = None) -> None:
    """TOOL_WAIT -> WAITING with the next call: ``call`` when it is known only now (an
    open-ended job), else the next call the job already knows (a trace)."""
    check_resume(job, call)
    if call is not None:
        job.segments.append(call)
    job.revision += 1
    job.segment_index += 1
    segment = job.segments[job.segment_index]
    job.num_output_tokens = 0
    job.max_output_tokens = segment.output_tokens
    job.num_context_tokens += segment.input_tokens
    job.status = WAITING
    job.ready_since = job.waiting_since = now


def finish(job: Job, now: float) -> None:
    """RUNNING -> FINISHED: the job's last call (one that calls no tool) is done."""
    if job.status is not RUNNING or job.segment.tool is not None:
        raise _refuse(job, "finish", "RUNNING in a call that calls no tool")
    _close(job, now)


def end_early(job: Job, now: float) -> None:
    """Any state -> FINISHED: the agent stopped, the client left or the call failed. The
    caller frees the job's blocks."""
    if job.status is FINISHED:
        raise _refuse(job, "end_early", "an unfinished job")
    _close(job, now)


def _close(job: Job, now: float) -> None:
    job.revision += 1
    job.status, job.finish_time = FINISHED, now
    job.kv_location, job.num_computed_tokens = KVLocation.NONE, 0


def revise_call(job: Job, call: Segment) -> None:
    """The current call as it turned out: the tool it called (named once the answer is
    parsed) or its real output length. Its input cannot change: it is in the context."""
    if job.status is FINISHED:
        raise _refuse(job, "revise_call", "an unfinished job")
    current = job.segments[job.segment_index]
    if call.input_tokens != current.input_tokens:
        raise TransitionError(
            f"revise_call: job {job.job_id!r}'s call has {current.input_tokens} input tokens, "
            f"not {call.input_tokens}"
        )
    job.revision += 1
    job.segments[job.segment_index] = call


# ---- KV location -----------------------------------------------------------------------------
def keep_kv(job: Job) -> None:
    """A job that stopped running keeps its blocks on the device (preserved)."""
    if job.status is RUNNING or job.kv_location is not DEVICE:
        raise _refuse(job, "keep_kv", "a stopped job with its KV on the device")


def release_kv(job: Job, location: KVLocation) -> None:
    """The job's device KV went to ``location`` (prefix cache, host tier, or nowhere); none
    of it counts as computed until the job is admitted again."""
    if job.kv_location is not DEVICE or location is DEVICE:
        raise _refuse(job, f"release_kv to {location.value}", "KV on the device")
    job.revision += 1
    job.kv_location = location
    job.num_computed_tokens = 0


def prefetched(job: Job, tokens: int) -> None:
    """A stopped job's KV came back from the host before the job runs again: ahead of its
    tool's return, or after it while the call still waits to be admitted."""
    if job.status not in (TOOL_WAIT, WAITING) or job.kv_location is not KVLocation.HOST:
        raise _refuse(job, "prefetched", "TOOL_WAIT or WAITING with its KV on the host")
    job.revision += 1
    job.kv_location = DEVICE
    job.num_computed_tokens = tokens


# ---- tokens ----------------------------------------------------------------------------------
def book_compute(job: Job, start: int, tokens: int) -> int:
    """The engine computed ``tokens`` tokens from position ``start``; returns how many of
    them had been computed before (recompute after a discard or eviction)."""
    job.revision += 1
    end = start + tokens
    high = job.kv_high_water
    redone = 0
    if start < high:
        redone = min(end, high) - start
        job.num_recomputed_tokens += redone
    if end > high:
        job.kv_high_water = end
    job.num_computed_tokens = end
    job.num_computed_total += tokens
    return redone


def book_output(job: Job, emitted: int, now: float) -> None:
    """``emitted`` tokens were sampled for the current call (they join the context)."""
    job.revision += 1
    job.num_output_tokens += emitted
    job.num_context_tokens += emitted
    job.num_generated_total += emitted
    if job.first_token_time is None:
        job.first_token_time = now


def mirror(job: Job, context: int, computed: int, output: int) -> None:
    """Counters as a foreign engine (vLLM) reports them; a waiting call's ``computed`` is
    its prefix-cache hit."""
    job.revision += 1
    job.num_context_tokens, job.num_computed_tokens = context, computed
    job.num_output_tokens = output
