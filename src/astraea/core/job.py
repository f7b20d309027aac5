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
    """An agent job as a trace states it: arrival time (s), category, and its segments."""

    job_id: str
    arrival: float
    category: str
    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        if not self.job_id:
            raise ValueError("job_id must be a non-empty string")
        if not (math.isfinite(self.arrival) and self.arrival >= 0):
            raise ValueError(f"arrival must be a finite number >= 0, got {self.arrival!r}")
        if not self.segments:
            raise ValueError("a job needs at least one segment")
        if self.segments[-1].tool is not None:
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
    """Where a job is in its life; the order is the order a job moves through."""

    PENDING = 0  # not arrived yet
    WAITING = 1  # its current segment is ready and queued
    RUNNING = 2  # its current segment is in the running batch
    TOOL_WAIT = 3  # blocked on a tool call
    FINISHED = 4


class KVLocation(enum.Enum):
    """Where a job's KV cache lives while it is not running."""

    NONE = "none"  # nothing kept: the context must be (re)computed
    DEVICE = "device"  # owned blocks on the accelerator (running, or preserved/pinned)
    CACHED = "cached"  # evictable prefix cache blocks on the accelerator (vLLM's LRU)
    HOST = "host"  # swapped out to the host tier


@dataclass(slots=True, eq=False)
class Job:
    """Live state of a job inside the scheduler. Only the mechanism writes it.

    Token accounting: ``num_context_tokens`` is the length the current call's KV must cover
    before decoding (all earlier tokens plus this call's input, plus what it generated so
    far); ``num_computed_tokens`` counts tokens whose KV is on the accelerator now.
    """

    spec: JobSpec
    job_id: str = field(init=False)
    status: JobStatus = JobStatus.PENDING
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
    # Per-policy state (e.g. an MLFQ level). The mechanism stores what the policy returns.
    policy_state: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.job_id = self.spec.job_id
        if not self.max_output_tokens:
            self.max_output_tokens = self.spec.segments[self.segment_index].output_tokens

    @property
    def arrival(self) -> float:
        return self.spec.arrival

    @property
    def segment(self) -> Segment:
        return self.spec.segments[self.segment_index]

    @property
    def num_segments_done(self) -> int:
        return self.segment_index if self.status != JobStatus.FINISHED else len(self.spec.segments)

    @property
    def is_last_segment(self) -> bool:
        return self.segment_index == len(self.spec.segments) - 1

    @property
    def in_prefill(self) -> bool:
        """True while the current call's context is not fully computed."""
        return self.num_computed_tokens < self.num_context_tokens

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
