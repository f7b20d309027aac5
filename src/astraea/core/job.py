"""The agent job: what a trace describes (immutable specs) and its live state in the scheduler.

A job is a chain of segments. Each segment is one LLM call: ``input_tokens`` new tokens are
appended to the job's context (the prompt, or a tool's result), then ``output_tokens`` are
generated; the segment may end in a tool call, during which the job computes nothing but may
still hold KV cache. The context of a call is everything before it plus its input.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool (API) call that ends a segment: its name is its latency category."""

    name: str
    latency: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("tool name must be a non-empty string")
        if not (math.isfinite(self.latency) and self.latency >= 0):
            raise ValueError(f"tool latency must be a finite number >= 0, got {self.latency!r}")


@dataclass(frozen=True, slots=True)
class Segment:
    """One LLM call of a job: new input tokens, tokens to generate, and an optional tool call."""

    input_tokens: int
    output_tokens: int
    tool: ToolCall | None = None

    def __post_init__(self) -> None:
        if self.input_tokens < 1:
            raise ValueError(f"input_tokens must be >= 1, got {self.input_tokens!r}")
        if self.output_tokens < 1:
            raise ValueError(f"output_tokens must be >= 1, got {self.output_tokens!r}")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """An agent job as it arrives: arrival time (s), category, and the calls known then.

    A trace knows all of a job's calls; the last calls no tool, every other one does. An
    ``open_ended`` job (a served agent) knows only its first call: more may follow each tool
    call (``lifecycle.resume``), so its last known call may end in a tool."""

    job_id: str
    arrival: float
    category: str
    segments: tuple[Segment, ...]
    open_ended: bool = False

    def __post_init__(self) -> None:
        if not self.job_id:
            raise ValueError("job_id must be a non-empty string")
        if not (math.isfinite(self.arrival) and self.arrival >= 0):
            raise ValueError(f"arrival must be a finite number >= 0, got {self.arrival!r}")
        if not self.segments:
            raise ValueError("a job needs at least one segment")
        if self.segments[-1].tool is not None and not self.open_ended:
            raise ValueError("the last segment must not call a tool")
        for i, seg in enumerate(self.segments[:-1]):
            if seg.tool is None:
                raise ValueError(f"segment {i} is not the last one, so it must call a tool")

    @property
    def total_tool_time(self) -> float:
        return sum(s.tool.latency for s in self.segments if s.tool is not None)

    @property
    def total_tokens(self) -> int:
        """Tokens in the job's context after its last call."""
        return sum(s.input_tokens + s.output_tokens for s in self.segments)

    def context_before(self, index: int) -> int:
        """Context tokens the call ``index`` starts from, its own input excluded."""
        return sum(s.input_tokens + s.output_tokens for s in self.segments[:index])


class JobStatus(enum.IntEnum):
    """Where a job is in its life (transitions: ``astraea.core.lifecycle``)."""

    WAITING = 1  # its current segment is ready and queued
    RUNNING = 2  # its current segment is in the running batch
    TOOL_WAIT = 3  # blocked on a tool call
    FINISHED = 4


class KVLocation(enum.Enum):
    """Where a job's KV cache lives."""

    NONE = "none"  # nothing kept: the context must be (re)computed
    DEVICE = "device"  # owned blocks on the accelerator: running, or preserved while idle
    CACHED = "cached"  # evictable prefix cache blocks on the accelerator (vLLM's LRU)
    HOST = "host"  # swapped out to the host tier


@dataclass(slots=True, eq=False)
class Job:
    """Live state of a job inside the scheduler. Only ``astraea.core.lifecycle`` writes its
    status, KV location, calls and token counters; policies only read it.

    ``segments`` are the calls known so far (all of a trace job's; an open-ended job's grow
    as they arrive), ``segment_index`` the current one. ``num_context_tokens`` is the length
    the current call's KV must cover before decoding (all earlier tokens plus this call's
    input, plus what it generated so far); ``num_computed_tokens`` counts tokens whose KV is
    on the accelerator now.
    """

    spec: JobSpec
    job_id: str = field(init=False)
    segments: list[Segment] = field(init=False)
    status: JobStatus = JobStatus.WAITING
    segment_index: int = 0
    num_context_tokens: int = 0
    num_computed_tokens: int = 0
    num_output_tokens: int = 0  # generated in the current segment
    max_output_tokens: int = 0  # the current segment's output length (its max_tokens)
    kv_location: KVLocation = KVLocation.NONE
    # Time stamps (seconds, scheduler clock).
    ready_since: float = 0.0  # when the current segment became ready (request arrival)
    waiting_since: float = 0.0  # start of the current stretch in WAITING
    tool_started: float = 0.0
    finish_time: float | None = None
    first_token_time: float | None = None
    # History, over the job's whole life.
    total_waiting_time: float = 0.0
    total_tool_time: float = 0.0
    num_computed_total: int = 0  # tokens the engine computed for this job (prefill+decode)
    kv_high_water: int = 0  # longest context prefix ever computed: beyond-first work is recompute
    num_recomputed_tokens: int = 0
    num_generated_total: int = 0
    num_preemptions: int = 0
    # Bumped by every write of ``astraea.core.lifecycle``: a reader may cache what it derives
    # from the job's state and trust it while this is unchanged.
    revision: int = 0
    # Per-policy state (e.g. an MLFQ level). The mechanism stores what the policy returns.
    policy_state: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.job_id = self.spec.job_id
        self.segments = list(self.spec.segments)
        if not self.max_output_tokens:
            self.max_output_tokens = self.segments[self.segment_index].output_tokens

    @property
    def arrival(self) -> float:
        return self.spec.arrival

    @property
    def segment(self) -> Segment:
        return self.segments[self.segment_index]

    @property
    def is_last_segment(self) -> bool:
        """The current call ends the job: it calls no tool."""
        return self.segments[self.segment_index].tool is None

    @property
    def total_tokens(self) -> int:
        """Tokens in the job's context after its last known call."""
        return sum(s.input_tokens + s.output_tokens for s in self.segments)

    @property
    def num_uncomputed_tokens(self) -> int:
        return self.num_context_tokens - self.num_computed_tokens

    @property
    def remaining_output_tokens(self) -> int:
        return self.max_output_tokens - self.num_output_tokens

    @property
    def jct(self) -> float | None:
        if self.finish_time is None:
            return None
        return self.finish_time - self.spec.arrival
