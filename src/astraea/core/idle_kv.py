"""The KV of jobs that are not running: released the way the policy says, reviewed while
preserved, brought back from the host ahead of a tool's return, and taken back when the
engine would otherwise stall on memory.

This is the mechanism half of KV management: the policy decides (``KVAction``), this module
moves blocks and books each move through ``lifecycle``. Copies go onto the plan's ordered
copy list in the order they are issued.
"""

from __future__ import annotations

from astraea.core import lifecycle
from astraea.core.counters import SchedulerCounters
from astraea.core.job import Job, JobStatus, KVLocation
from astraea.core.kv_cache import BlockCopy, KVCacheManager
from astraea.core.policy import KVAction, KVContext, Policy


class IdleKV:
    def __init__(
        self,
        kv: KVCacheManager,
        policy: Policy,
        counters: SchedulerCounters,
        max_prefetch_blocks_per_step: int = 0,
    ) -> None:
        self.kv = kv
        self.policy = policy
        self.counters = counters
        self.max_prefetch_blocks_per_step = max_prefetch_blocks_per_step
        self.preserved: dict[str, Job] = {}  # not running, KV pinned on the device
        self.swapped: dict[str, Job] = {}  # in a tool call, KV on the host tier

    def release(self, job: Job, action: KVAction, copies: list[BlockCopy]) -> None:
        """Apply ``action`` to a job that stops running (tool call, preemption, reclaim);
        a swap-out joins ``copies``."""
        kv, job_id = self.kv, job.job_id
        if action is KVAction.SWAP and not kv.can_swap_out(job_id):
            if kv.num_blocks(job_id):
                self.counters.swap_fallbacks += 1
            action = KVAction.DISCARD
        counts = self.counters.kv_actions
        counts[action.value] = counts.get(action.value, 0) + 1
        if action is KVAction.PRESERVE:
            lifecycle.keep_kv(job)
            self.preserved[job_id] = job
            return
        self.forget(job_id)
        if action is KVAction.CACHE:
            kv.cache(job_id, job.num_computed_tokens)
            lifecycle.release_kv(job, KVLocation.CACHED)
        elif action is KVAction.SWAP:
            copy = kv.swap_out(job_id, job.num_computed_tokens)
            copies.append(copy)
            self.counters.swapped_out_blocks += len(copy.src)
            lifecycle.release_kv(job, KVLocation.HOST)
            if job.status == JobStatus.TOOL_WAIT:
                self.swapped[job_id] = job
        else:
            kv.free(job_id)
            lifecycle.release_kv(job, KVLocation.NONE)

    def forget(self, job_id: str) -> None:
        """The job runs again (or its KV moved): it is no longer idle."""
        self.preserved.pop(job_id, None)
        self.swapped.pop(job_id, None)

    def eviction_action(self, job: Job, context: KVContext) -> KVAction:
        """The policy's choice for a job whose memory is taken (PRESERVE is no option)."""
        action = self.policy.on_preempt(job, context)
        if action is KVAction.PRESERVE:
            raise ValueError(f"policy {self.policy.name!r} tried to preserve a preempted job")
        return action

    def review(self, context: KVContext, copies: list[BlockCopy]) -> None:
        """Let the policy release preserved KV of jobs in a tool call (a time-to-live ran
        out, memory grew tight); whatever it releases goes the way it says. A job whose tool
        returned keeps its KV until it runs (or memory is reclaimed)."""
        if not self.preserved or self.policy.keeps_every_idle_context(context):
            return
        tool_wait = JobStatus.TOOL_WAIT
        for job in list(self.preserved.values()):
            if job.status is not tool_wait:
                continue
            action = self.policy.review_idle(job, context)
            if action is not KVAction.PRESERVE:
                self.release(job, action, copies)

    def prefetch(self, context: KVContext, copies: list[BlockCopy]) -> None:
        """Swap contexts back in ahead of their tools' predicted return, as the policy
        asks, while memory and the per-step prefetch budget allow."""
        kv = self.kv
        budget = self.max_prefetch_blocks_per_step or kv.host.num_blocks
        for job in list(self.swapped.values()):
            blocks = kv.host_blocks(job.job_id)
            if blocks > budget or not self.policy.prefetch(job, context):
                continue
            if not kv.can_allocate(blocks):
                break
            budget -= blocks
            del self.swapped[job.job_id]
            copy = kv.swap_in(job.job_id)
            copies.append(copy)
            self.counters.swapped_in_blocks += len(copy.src)
            self.counters.prefetched_blocks += len(copy.src)
            lifecycle.prefetched(job, copy.num_tokens)
            self.preserved[job.job_id] = job

    def reclaim_one(self, context: KVContext, copies: list[BlockCopy]) -> bool:
        """Take back the KV preserved for one idle job (first in the policy's reclaim order), as a
        preemption of that idle job: the policy says whether it is cached, swapped or
        discarded. The mechanism calls this only when running work or the whole queue is
        stuck on memory, so preserved contexts never deadlock the engine. Returns False
        when nothing is left to take."""
        if not self.preserved:
            return False
        order = self.policy.reclaim_order
        victim = min(self.preserved.values(), key=lambda j: order(j, context))
        self.release(victim, self.eviction_action(victim, context), copies)
        self.counters.reclaimed_preserved += 1
        return True
