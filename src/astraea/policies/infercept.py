"""``infercept``: InferCept's intercept handling (Abhyankar et al., "INFERCEPT: Efficient
Intercept Support for Augmented Large Language Model Inference", ICML 2024, sec. 4; code
WukLab/InferCept, ``vllm/core/scheduler_v2.py`` and ``vllm/core/policy.py``).

Order. InferCept keeps vLLM's FCFS policy, whose key is the arrival time of the request's
sequence group. An augmented request stays one sequence group across its interceptions, so
a resumed request keeps its original arrival: the order is FCFS by *job* arrival. A request
resumed with its context preserved rejoins vLLM's running group directly, and one swapped
out rejoins the swapped group, which vLLM schedules before the waiting one; we rank those
two groups ahead of the rest in that order. ``order="call"`` ranks by each call's own
arrival instead (vLLM's order for independent calls), for comparison.

KV at an interception (a tool call). The least wasted memory-time among preserve, discard
and swap (``policies.common``; shared/ASTRAEA.md sec. 2.3), with the interception's
remaining time predicted as the time it has already run (``now - tool_started``). At the
moment of the call that estimate is 0, so the context is preserved; every step after,
``review_idle`` re-decides with the grown estimate, and discards or swaps once that is
cheaper (InferCept re-evaluates its paused requests every iteration). A swapped context
comes back when the job returns (no prefetch); a preempted running request is swapped out
(InferCept's passive discard swaps first and recomputes only when the host is full).

Approximations. Discard is DISCARD (the blocks are freed); InferCept resumes a discarded
context by chunked recompute folded into later iterations, which we do not model: the
recompute is an ordinary prefill. InferCept caps the swap traffic of an iteration so that
it hides under the forward pass (swap time ~ forward time); the mechanism has no per-step
cap on swap-outs or admission swap-ins (``max_prefetch_blocks_per_step`` only caps
prefetches, which InferCept does not do), and the simulator adds swap time to the step, so
swaps cost here what the waste model charges, not less. InferCept's public code can also
read the interception's true duration from the request; we use the elapsed-time estimate
the project reference states.
"""

from __future__ import annotations

from astraea.core.job import Job, KVLocation
from astraea.core.policy import KVAction, KVContext, tool_elapsed
from astraea.policies.common import ServicePolicy, least_waste
from astraea.policies.registry import register

_GROUP = {KVLocation.DEVICE: 0, KVLocation.HOST: 1}


@register
class InferCept(ServicePolicy):
    name = "infercept"
    reviews_idle = True

    def __init__(self, order: str = "job") -> None:
        if order not in ("job", "call"):
            raise ValueError(f"order must be 'job' or 'call', got {order!r}")
        self.by_job = order == "job"

    def priority(self, job: Job, now: float) -> tuple[int, float, float]:
        # Resumed with its context preserved (vLLM's running group), then swapped out (the
        # swapped group, scheduled before the waiting one), then the rest.
        group = _GROUP.get(job.kv_location, 2)
        if self.by_job:
            return (group, job.arrival, job.ready_since)
        return (group, job.ready_since, job.arrival)

    def on_tool_call(self, job: Job, kv: KVContext) -> KVAction:
        return self._decide(job, kv)

    def review_idle(self, job: Job, kv: KVContext) -> KVAction:
        return self._decide(job, kv)

    def on_preempt(self, job: Job, kv: KVContext) -> KVAction:
        return KVAction.SWAP  # the mechanism discards instead when the host tier is full

    def _decide(self, job: Job, kv: KVContext) -> KVAction:
        elapsed = tool_elapsed(job, kv.now)
        return least_waste(self.service, job.num_computed_tokens, kv, elapsed)
