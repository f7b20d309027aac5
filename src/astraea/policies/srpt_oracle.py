"""``srpt-oracle``: clairvoyant job-level shortest remaining processing time with perfect KV
decisions (ours; shared/ASTRAEA.md sec. 3, "oracle").

A clairvoyant *reference*, not a proven bound: it knows every job's future (all remaining
calls' input and output lengths, every tool's exact latency) and uses it greedily; SRPT is
optimal for mean completion time only on a single preemptive server with no memory limit,
and neither holds here (batching, KV memory, non-preemptive admission), so another policy
may beat it on some workloads.

Order. A job's priority is the compute time of everything it has left: the remaining
prefill and decode of its current call and all of its later calls, computed exactly from
``job.segments`` with the profile's service-time model (each later call prefills its
new input on top of the context before it, then decodes). Recompute of a context that was
released is not counted (it is the scheduler's overhead, not the job's work). Least
remaining work first; admission skips a job that does not fit and tries the next one;
running calls are preempted only when memory runs out (the one with the most work left).

KV. Below ``watermark`` (fraction of the accelerator's KV blocks owned) a tool-waiting job
keeps its KV. Above it, the least wasted memory-time of InferCept's model
(``policies.common``) with the tool's exact remaining time decides, at the call and again
every step while the job waits (``review_idle``); discard is lazy (CACHE: the blocks stay
reusable until someone needs them). A swapped context is swapped back in exactly when the
remaining tool time equals the swap-in time plus ``prefetch_margin`` (one short step by
default, since the mechanism acts at step boundaries), so the job finds it on the device.
The mechanism asks at plan boundaries only: a multi-step decode plan that runs until the
next outside event can pass over that window, and the context then comes back when the
tool returns, as it would without prefetch.
"""

from __future__ import annotations

from astraea.core.job import Job
from astraea.core.policy import KVAction, KVContext, tool_time_left
from astraea.policies.common import ServicePolicy, host_room, other_tokens, release_waste
from astraea.policies.registry import register


@register
class SrptOracle(ServicePolicy):
    name = "srpt-oracle"
    head_of_line_blocking = False
    reviews_idle = True
    prefetches = True

    def __init__(
        self, watermark: float = 0.9, prefetch_margin: float = 0.02, use_swap: bool = False
    ) -> None:
        if not 0.0 <= watermark <= 1.0:
            raise ValueError(f"watermark must be in [0, 1], got {watermark}")
        if prefetch_margin < 0:
            raise ValueError(f"prefetch_margin must be >= 0, got {prefetch_margin}")
        self.watermark = watermark
        self.prefetch_margin = prefetch_margin
        self.use_swap = use_swap
        self._later: dict[str, list[float]] = {}  # job_id -> work of calls i+1.. (s)

    # ---- order ----------------------------------------------------------------------------
    def remaining_work(self, job: Job) -> float:
        later = self._later.get(job.job_id)
        if later is None or len(later) != len(job.segments):  # an open-ended job grew
            later = self._later[job.job_id] = self._suffix_work(job)
        service = self.service
        prefill = 0
        if job.num_output_tokens == 0:
            prefill = min(job.segment.input_tokens, job.num_uncomputed_tokens)
        context = job.num_context_tokens
        current = service.prefill_time(prefill, context - prefill)
        current += service.decode_time(job.remaining_output_tokens, context)
        return current + later[job.segment_index]

    def _suffix_work(self, job: Job) -> list[float]:
        """``out[i]``: compute time of the calls after call ``i``."""
        service, segments = self.service, job.segments
        out = [0.0] * len(segments)
        context = job.total_tokens
        for i in range(len(segments) - 1, 0, -1):
            seg = segments[i]
            context -= seg.input_tokens + seg.output_tokens
            work = service.prefill_time(seg.input_tokens, context)
            work += service.decode_time(seg.output_tokens, context + seg.input_tokens)
            out[i - 1] = out[i] + work
        return out

    def priority(self, job: Job, now: float) -> tuple[float, str]:
        return (self.remaining_work(job), job.job_id)

    def on_job_end(self, job: Job) -> None:
        self._later.pop(job.job_id, None)

    def on_segment_end(self, job: Job, now: float) -> None:
        if job.is_last_segment:
            self._later.pop(job.job_id, None)
        return None

    # ---- KV -------------------------------------------------------------------------------
    def _tool_left(self, job: Job, now: float) -> float:
        tool = job.segment.tool
        return tool_time_left(job, now, tool.latency) if tool else 0.0

    def on_tool_call(self, job: Job, kv: KVContext) -> KVAction:
        return self._decide(job, kv)

    def review_idle(self, job: Job, kv: KVContext) -> KVAction:
        return self._decide(job, kv)

    def _decide(self, job: Job, kv: KVContext) -> KVAction:
        if kv.device_usage < self.watermark or not kv.memory_bound:
            return KVAction.PRESERVE
        own, left = job.num_computed_tokens, self._tool_left(job, kv.now)
        action, waste = release_waste(
            self.service, own, other_tokens(own, kv), host_room(kv, self.use_swap), KVAction.CACHE
        )
        return KVAction.PRESERVE if left * own <= waste else action

    def prefetch(self, job: Job, kv: KVContext) -> bool:
        swap_in = self.service.swap_time(job.kv_high_water)
        return self._tool_left(job, kv.now) <= swap_in + self.prefetch_margin

    def on_preempt(self, job: Job, kv: KVContext) -> KVAction:
        own = job.num_computed_tokens
        return release_waste(
            self.service, own, other_tokens(own, kv), host_room(kv, self.use_swap), KVAction.CACHE
        )[0]
