"""The small interface through which a scheduling policy plugs into the mechanism.

A policy is pure: it reads jobs (never writes them), ``now`` and a snapshot of KV memory,
and answers with an order (``priority``), a victim, or a KV decision. Per-job state a
policy keeps (an MLFQ level, say) is returned as a dict that the mechanism stores in
``job.policy_state``. The defaults reproduce vLLM V1: FCFS-like ordering by request arrival,
evict-the-lowest-priority preemption, and finished calls' KV left in the LRU prefix cache.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from astraea.core.job import Job, JobStatus

if TYPE_CHECKING:
    from astraea.predict.service import ServiceTimeModel


class KVAction(enum.Enum):
    """What happens to a job's KV cache when it stops running (tool call or preemption)."""

    PRESERVE = "preserve"  # keep the blocks, pinned on the accelerator
    CACHE = "cache"  # leave full blocks in the evictable LRU prefix cache (vLLM)
    SWAP = "swap"  # copy to the host tier, free the accelerator blocks
    DISCARD = "discard"  # free everything; recompute the context later


@dataclass(frozen=True, slots=True)
class KVContext:
    """What the mechanism tells a policy when it asks for a KV decision: KV memory now, and
    whether the last admission round left a call out for lack of memory (the admission
    manager's finding, passed here and nowhere else)."""

    now: float
    block_size: int
    device_blocks_total: int
    device_blocks_owned: int  # owned by running or preserved jobs
    host_blocks_free: int
    memory_bound: bool = False

    @property
    def device_usage(self) -> float:
        """Fraction of accelerator blocks held by owners (cache counts as free)."""
        return (
            self.device_blocks_owned / self.device_blocks_total if self.device_blocks_total else 1.0
        )


@dataclass(frozen=True, slots=True)
class PolicyEnv:
    """What the executor tells a policy about the engine it schedules for."""

    service: ServiceTimeModel


def tool_elapsed(job: Job, now: float) -> float:
    """How long a tool-waiting job's tool has run."""
    return max(0.0, now - job.tool_started)


def tool_time_left(job: Job, now: float, expected_latency: float) -> float:
    """Time until a tool-waiting job's tool returns, if it takes ``expected_latency``."""
    return max(0.0, expected_latency - (now - job.tool_started))


class WaitingOrder(Protocol):
    """A policy's own order over the waiting queue: ``ordered(now)`` must equal sorting the
    jobs by ``(priority(job, now), seq)``, seq being the push order."""

    def add(self, job: Job, seq: int) -> None: ...
    def remove(self, job_id: str) -> None: ...
    def ordered(self, now: float) -> list[Job]: ...
    def jobs(self) -> list[Job]: ...


class Policy:
    """Base policy: subclass, set ``name``, override what differs, register it.

    ``static_priority`` promises that ``priority(job, now)`` does not change while the job
    waits, so the mechanism may keep the queue sorted instead of re-sorting each step.
    ``head_of_line_blocking`` stops admission at the first waiting job that does not fit
    (vLLM's rule); without it smaller jobs behind it may go first. ``reviews_idle`` asks the
    mechanism to call ``review_idle`` each step for every job in a tool call whose KV is
    preserved; ``prefetches`` to call ``prefetch`` for every job whose KV went to the host tier
    at a tool call and is still there (its tool may have returned already).
    ``max_displacements`` > 0 lets the policy preempt up to that many running calls at the
    start of a step so that a better waiting call can run (``displace``; Autellix's proactive
    preemption); 0, the default, preempts only for memory (vLLM's rule).
    """

    name: ClassVar[str] = ""
    static_priority: ClassVar[bool] = True
    head_of_line_blocking: ClassVar[bool] = True
    reviews_idle: ClassVar[bool] = False
    prefetches: ClassVar[bool] = False
    max_displacements: ClassVar[int] = 0

    def bind(self, env: PolicyEnv) -> None:
        """Called once by the executor's driver before the first step."""
        return None

    def priority(self, job: Job, now: float) -> Any:
        """Sort key of a waiting job: lower runs first. Default: the call's arrival."""
        return job.ready_since

    def priorities(self, jobs: Sequence[Job], now: float) -> list[Any]:
        """``priority`` of each job, in one call (a dynamic policy re-keys its whole queue
        every step; overriding this saves a call per job)."""
        priority = self.priority
        return [priority(job, now) for job in jobs]

    def waiting_order(self) -> WaitingOrder | None:
        """An incremental order for the waiting queue to keep instead of sorting
        ``priorities`` each step (one is made per queue); None: the queue sorts."""
        return None

    def preemption_victim(self, candidates: Sequence[Job], now: float) -> Job:
        """Which running job to preempt when memory runs out: the lowest priority one,
        the latest admitted among equals (vLLM preempts the tail of its running list)."""
        victim = candidates[-1]
        worst = self.priority(victim, now)
        for job in reversed(candidates):
            key = self.priority(job, now)
            if key > worst:
                victim, worst = job, key
        return victim

    def displace(
        self, waiting: Job, running: Sequence[Job], batch_full: bool, kv: KVContext
    ) -> Job | None:
        """A running call to preempt now so that ``waiting`` (the first waiting call in the
        policy's order) can run, or None (only with ``max_displacements``). Asked at the start
        of a step while the batch is full (``batch_full``: ``max_num_seqs`` calls run) or the
        last admission round left a call out for memory (``kv.memory_bound``)."""
        return None

    def on_tool_call(self, job: Job, kv: KVContext) -> KVAction:
        """KV decision when a segment stops on a tool call."""
        return KVAction.CACHE

    def on_preempt(self, job: Job, kv: KVContext) -> KVAction:
        """KV decision for a preempted job (PRESERVE is not allowed: memory is needed)."""
        return KVAction.CACHE

    def review_idle(self, job: Job, kv: KVContext) -> KVAction:
        """Keep preserving a tool-waiting job's KV, or release it now (``reviews_idle``)."""
        return KVAction.PRESERVE

    def keeps_every_idle_context(self, kv: KVContext) -> bool:
        """True when ``review_idle`` would keep every context in this memory state, so the
        mechanism may skip this step's review (thousands of tool waits at scale)."""
        return False

    def prefetch(self, job: Job, kv: KVContext) -> bool:
        """Swap a tool-waiting job's KV back in now, ahead of its return (``prefetches``)."""
        return False

    def reclaim_order(self, job: Job, kv: KVContext) -> Any:
        """Which idle preserved context the mechanism takes back first when memory runs out
        (lowest first). Default: the oldest tool call."""
        return (job.status != JobStatus.TOOL_WAIT, job.tool_started)

    def on_step(self, num_tokens: int) -> None:
        """The engine computed ``num_tokens`` tokens (a token clock for aging rules)."""
        return None

    def on_tool_return(self, job: Job, now: float) -> Mapping[str, float] | None:
        """The job's tool returned; the job still shows the call that made it."""
        return None

    def on_arrival(self, job: Job, now: float) -> Mapping[str, float] | None:
        """Initial per-job policy state."""
        return None

    def on_segment_end(self, job: Job, now: float) -> Mapping[str, float] | None:
        """Per-job policy state after a segment ended (job still shows the finished one)."""
        return None

    def on_job_end(self, job: Job) -> None:
        """The job was ended early (``Scheduler.end_job``): drop anything kept about it."""
