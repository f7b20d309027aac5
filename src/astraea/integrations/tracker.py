"""Shadow astraea jobs for the requests a foreign engine (vLLM) schedules.

vLLM knows requests; an astraea policy reasons about agent jobs (calls in order, tool waits
between them, tokens served so far). ``JobTracker`` keeps one open-ended
``astraea.core.job.Job`` per job, moves it with the core's ``lifecycle`` transitions as its
calls arrive, run and end, and calls the policy's hooks at the same points the core
scheduler does (arrival, call end, tool call, tool return, idle review), so the plugin orders
and pins with the very policy code the simulator and our engine use (a parity test holds
the two together). Admission's skipping rule is the core's (``core.admission.fit_first``).
The engine's side (queues, blocks) stays in the glue module; this one never imports vLLM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from astraea.core import lifecycle
from astraea.core.job import Job, JobSpec, JobStatus, KVLocation, Segment, ToolCall
from astraea.core.policy import KVAction, KVContext, Policy


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One LLM call as the tracker sees it: its job and what the client hinted."""

    request_id: str
    job_id: str
    prompt_tokens: int
    max_tokens: int
    last: bool | None = None  # None: unknown (a next call may come until the job TTL)
    tool: str = "tool"  # the tool it ends in, when it is not the job's last call
    tool_latency: float | None = None


def call_info(
    request_id: str,
    extra_args: Mapping[str, Any] | None,
    session_id: str | None,
    priority: int,
    prompt_tokens: int,
    max_tokens: int,
) -> CallInfo:
    """Job identity, in order: ``extra_args["astraea_job_id"]`` (vLLM's ``vllm_xargs``), the
    request's session id, a non-zero priority, else the request alone (a one-call job)."""
    extra = extra_args or {}
    last = _flag(extra.get("astraea_last"))
    if extra.get("astraea_job_id"):
        job_id = str(extra["astraea_job_id"])
    elif session_id:
        job_id = f"session:{session_id}"
    elif priority:
        job_id = f"priority:{priority}"
    else:
        job_id, last = request_id, True
    latency = extra.get("astraea_tool_latency")
    return CallInfo(
        request_id,
        job_id,
        max(1, prompt_tokens),
        max(1, max_tokens),
        last,
        str(extra.get("astraea_tool") or "tool"),
        float(latency) if isinstance(latency, int | float) else None,
    )


def _flag(value: object) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


@dataclass(slots=True)
class Pin:
    """Blocks the plugin holds a reference to so that vLLM cannot evict them."""

    blocks: list[Any]
    since: float
    tokens: int


@dataclass(slots=True)
class Tracked:
    job: Job
    call: CallInfo  # the current call, or the last one that ended
    pin: Pin | None = None

    @property
    def level(self) -> int:
        return int(self.job.policy_state.get("level", 0))

    @property
    def call_index(self) -> int:
        return self.job.segment_index


class JobTracker:
    """Jobs by id, active calls by request id, and the policy's decisions over them. Every
    change of a shadow job's state goes through ``astraea.core.lifecycle``, as in the core
    scheduler; the policy hooks come at the same points in the same order."""

    def __init__(self, policy: Policy, pin_ttl: float = 60.0, job_ttl: float = 600.0) -> None:
        self.policy = policy
        self.pin_ttl = pin_ttl
        self.job_ttl = job_ttl
        self.jobs: dict[str, Tracked] = {}
        self.calls: dict[str, str] = {}  # request_id -> job_id, while the call is open

    # ---- life cycle ----------------------------------------------------------------------
    def arrive(self, call: CallInfo, now: float) -> Tracked:
        """A call reaches the engine: a new job, or the next call of one in a tool wait."""
        tracked = self.jobs.get(call.job_id)
        if tracked is not None and tracked.job.status in (JobStatus.WAITING, JobStatus.RUNNING):
            # A parallel call of a job already computing: schedule it as a job of its own.
            call = dataclasses.replace(call, job_id=f"{call.job_id}/{call.request_id}", last=True)
            tracked = None
        if tracked is None or tracked.job.status == JobStatus.FINISHED:
            first = _segment(call, call.prompt_tokens)
            spec = JobSpec(call.job_id, now, "vllm", (first,), open_ended=first.tool is not None)
            tracked = Tracked(lifecycle.arrive(spec, now), call)
            self.jobs[call.job_id] = tracked
            self._store(tracked.job, self.policy.on_arrival(tracked.job, now))
        else:
            job = tracked.job
            lifecycle.tool_returns(job, now)
            self._store(job, self.policy.on_tool_return(job, now))
            new_input = max(1, call.prompt_tokens - job.num_context_tokens)
            lifecycle.resume(job, now, _segment(call, new_input))
            lifecycle.mirror(job, call.prompt_tokens, 0, 0)  # vLLM sends the whole context
            tracked.call = call
        self.calls[call.request_id] = call.job_id
        return tracked

    def get(self, request_id: str) -> Tracked | None:
        job_id = self.calls.get(request_id)
        return None if job_id is None else self.jobs.get(job_id)

    def sync(self, request_id: str, num_tokens: int, computed: int, output: int) -> None:
        """Mirror the engine's counters (a waiting call's ``computed`` is its cache hit)."""
        tracked = self.get(request_id)
        if tracked is not None:
            lifecycle.mirror(tracked.job, num_tokens, computed, output)

    def admitted(self, request_id: str, now: float) -> Tracked | None:
        tracked = self.get(request_id)
        if tracked is not None and tracked.job.status == JobStatus.WAITING:
            job = tracked.job
            lifecycle.admit(job, now, job.num_computed_tokens)
            return tracked
        return None

    def preempted(self, request_id: str, now: float) -> Tracked | None:
        tracked = self.get(request_id)
        if tracked is not None and tracked.job.status == JobStatus.RUNNING:
            job = tracked.job
            lifecycle.release_kv(job, KVLocation.CACHED)  # vLLM frees its blocks into the cache
            lifecycle.preempt(job, now)
            return tracked
        return None

    def finished(
        self, request_id: str, now: float, kv: KVContext, aborted: bool = False
    ) -> tuple[Tracked | None, KVAction | None]:
        """A call ended. Returns the job and the policy's KV decision for its tool wait
        (None: the job ended, or the call was unknown)."""
        job_id = self.calls.pop(request_id, None)
        tracked = self.jobs.get(job_id) if job_id is not None else None
        if tracked is None:
            return None, None
        job = tracked.job
        ends = aborted or tracked.call.last is True or job.status != JobStatus.RUNNING
        out = max(1, job.num_output_tokens)
        lifecycle.mirror(job, job.num_context_tokens, job.num_computed_tokens, out)
        tool = None if ends else _tool(tracked.call)
        lifecycle.revise_call(job, Segment(job.segment.input_tokens, out, tool))
        self._store(job, self.policy.on_segment_end(job, now))
        if ends:
            self._end(tracked, now)
            return tracked, None
        lifecycle.stop_on_tool(job, now)
        lifecycle.mirror(job, job.num_context_tokens, job.num_context_tokens, out)  # in cache
        action = self.policy.on_tool_call(job, kv)
        if action is KVAction.PRESERVE:
            lifecycle.keep_kv(job)  # the glue pins the call's blocks
        else:  # vLLM keeps freed blocks as LRU prefix cache (a SWAP is carried out so)
            lifecycle.release_kv(job, KVLocation.CACHED)
        return tracked, action

    def released(self, tracked: Tracked) -> None:
        """The glue gave a tool-waiting job's pinned blocks back to vLLM's LRU cache."""
        job = tracked.job
        if job.status in (JobStatus.TOOL_WAIT, JobStatus.WAITING) and (
            job.kv_location is KVLocation.DEVICE
        ):
            lifecycle.release_kv(job, KVLocation.CACHED)

    def _end(self, tracked: Tracked, now: float) -> None:
        job = tracked.job
        if job.status is JobStatus.RUNNING and job.segment.tool is None:
            lifecycle.finish(job, now)
        else:
            lifecycle.end_early(job, now)
        if self.jobs.get(job.job_id) is tracked:
            del self.jobs[job.job_id]

    # ---- ordering --------------------------------------------------------------------------
    def priority(self, request_id: str, now: float) -> Any:
        tracked = self.get(request_id)
        return None if tracked is None else self.policy.priority(tracked.job, now)

    def order(self, request_ids: Sequence[str], now: float) -> list[int]:
        """Indices of ``request_ids`` in the policy's order (stable; unknown ones last)."""
        keyed = [(self.priority(r, now), i) for i, r in enumerate(request_ids)]
        known = sorted((k for k in keyed if k[0] is not None), key=lambda k: (k[0], k[1]))
        return [i for _, i in known] + [i for key, i in keyed if key is None]

    # ---- pinned KV during tool waits -------------------------------------------------------
    def pinned(self) -> list[Tracked]:
        return [t for t in self.jobs.values() if t.pin is not None]

    @property
    def num_pinned_blocks(self) -> int:
        return sum(len(t.pin.blocks) for t in self.jobs.values() if t.pin is not None)

    def review(self, kv: KVContext) -> list[tuple[Tracked, str]]:
        """Pins to release now and why (TTL, or the policy's idle review), and jobs whose next
        call never came (forgotten here; the caller releases their pins)."""
        now, out = kv.now, []
        # As the core's IdleKV: no per-job review when the policy keeps every context now.
        ask = self.policy.reviews_idle and not self.policy.keeps_every_idle_context(kv)
        for tracked in list(self.jobs.values()):
            job = tracked.job
            if job.status != JobStatus.TOOL_WAIT:
                continue
            if now - job.tool_started > self.job_ttl:
                self._end(tracked, now)
                out.append((tracked, "job_ttl"))
            elif tracked.pin is None:
                continue
            elif now - job.tool_started > self.pin_ttl:
                out.append((tracked, "ttl"))
            elif ask:
                action = self.policy.review_idle(job, kv)
                if action is not KVAction.PRESERVE:
                    out.append((tracked, f"policy:{action.value}"))
        return out

    def reclaim_order(self, kv: KVContext, spare: str | None = None) -> list[Tracked]:
        """Pinned jobs in the order their blocks go back when memory runs out."""
        pinned = [t for t in self.pinned() if t.job.job_id != spare]
        return sorted(pinned, key=lambda t: self.policy.reclaim_order(t.job, kv))

    def forget_all(self) -> list[Tracked]:
        """Shutdown: every job goes; returns those that still hold pins."""
        pinned = self.pinned()
        self.jobs.clear()
        self.calls.clear()
        return pinned

    @staticmethod
    def _store(job: Job, state: Mapping[str, float] | None) -> None:
        if state:
            job.policy_state.update(state)


def _tool(call: CallInfo) -> ToolCall:
    return ToolCall(call.tool, call.tool_latency or 0.0)


def _segment(call: CallInfo, input_tokens: int) -> Segment:
    """A call as known when it arrives: it ends in its tool unless it is the job's last."""
    tool = None if call.last is True else _tool(call)
    return Segment(input_tokens, call.max_tokens, tool)
