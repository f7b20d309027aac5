"""``infercept``: InferCept's intercept handling as its public scheduler does it (Abhyankar et
al., "INFERCEPT: Efficient Intercept Support for Augmented Large Language Model Inference",
ICML 2024, sec. 4; code WukLab/InferCept, ``vllm/core/scheduler_v2.py`` ``SchedulerV2`` and
``vllm/core/policy.py``).

Order. InferCept keeps vLLM's FCFS policy, whose key is the arrival time of the request's
sequence group. An augmented request stays one sequence group across its interceptions, so
a resumed request keeps its original arrival: the order is FCFS by *job* arrival. A request
resumed with its context preserved rejoins vLLM's running group directly, and one swapped
out rejoins the swapped group, which is scheduled before the waiting one
(``SchedulerV2.resume_seq_group``, ``_schedule_chunk_and_fill``); we rank those two groups
ahead of the rest in that order. ``order="call"`` ranks by each call's own arrival instead.

KV at an interception, as the code does it (the rules below were different here before;
each is cited):

* At the call the context is preserved (``SchedulerV2.pause_seq_group``, policy ``G``).
* Every iteration each preserved context is re-priced: the preserve waste
  ``remaining API time x context`` against the discard waste, and it is discarded once the
  discard is cheaper (``_schedule_chunk_and_fill``, the loop over ``self.paused``; the waste
  of a discard, ``discard_waste``, is the recompute's stall of the running batch plus the
  memory it holds, which ``policies.common`` models as ``T_prefill(own) x (own + others)``).
  The remaining time is the request's own API duration minus what has run
  (``SequenceGroup.api_remaining_time``; the request carries ``api_exec_time``):
  ``tool_time="true"``. ``tool_time="elapsed"`` predicts it by the time run so far instead.
* No swap is chosen while the engine has memory: a context is swapped out only when memory
  is needed (``passive_discard_by_order``: the passive victims are swapped from the back,
  recomputed when the host is full). In the mechanism that is ``on_preempt`` -> SWAP, which
  it calls when it takes preserved KV back for a running call and when it preempts a
  running call. Before, this module also swapped actively whenever swap's waste
  ``2 T_swap x others`` beat preserving, which on an idle engine (no others) is at once:
  ``active_swap=True`` keeps that rule.

Where our mechanism offers a strictly better form of what the code does (run both ways,
figures in docs/results.md, "Peers as their sources do them"):

* ``lazy_discard``: InferCept's vLLM (0.2) has no prefix cache, so a discard frees the
  blocks (``pause_by_recompute`` -> ``block_manager.free``). With the prefix cache the freed
  blocks stay reusable until something needs them (``KVAction.CACHE``): the memory is free
  at once all the same, and a return before eviction recomputes nothing.
* ``skip_unfit``: admission stops at the first waiting call that does not fit
  (``SchedulerV2._schedule``, ``stop_if_batch_limit`` / ``delayed.append(...); break``);
  with it a later call that fits may go.

``infercept`` is the stronger variant as measured; ``infercept-strict`` is the code's rule
exactly (hard discard, head-of-line blocking, true remaining time). Avg JCT s, seed 0
(``astraea compare -w infercept -n 600 -r 2,3,4 --policies infercept-strict,infercept``):
strict 80.6 / 96.4 / 113.9, lazy discard 74.1 / 89.8 / 109.5, lazy + ``skip_unfit`` 74.1 /
91.1 / 113.9 (so skipping stays off), the previous rule (active swap, elapsed time, hard
discard) 81.3 / 98.1 / 114.6; Autellix mix (300 jobs, 0.25 / 0.3 / 0.4): strict 57.6 / 64.0
/ 80.0, lazy 50.2 / 58.0 / 71.7; Continuum mix (100 jobs, 0.05 / 0.07 / 0.1): strict 38.5 /
42.7 / 59.7, lazy 35.5 / 40.3 / 54.2.

Not modelled: the chunked recompute and the per-iteration swap budget
(``_set_max_ragged_batch``); admission taking back preserved contexts while other calls run
(ours does so only for running calls or when nothing runs); ``_active_discard``, which
recomputes a swapped-out preempted request when nothing waits; and keeping the largest-waste
candidate as a passive victim instead of discarding it (ours discards every candidate).
"""

from __future__ import annotations

from astraea.core.job import Job, KVLocation
from astraea.core.policy import KVAction, KVContext, tool_elapsed, tool_time_left
from astraea.policies.common import ServicePolicy, least_waste, other_tokens
from astraea.policies.registry import register

_GROUP = {KVLocation.DEVICE: 0, KVLocation.HOST: 1}


@register
class InferCept(ServicePolicy):
    name = "infercept"
    reviews_idle = True

    def __init__(
        self,
        order: str = "job",
        tool_time: str = "true",
        lazy_discard: bool = True,
        skip_unfit: bool = False,
        active_swap: bool = False,
    ) -> None:
        if order not in ("job", "call"):
            raise ValueError(f"order must be 'job' or 'call', got {order!r}")
        if tool_time not in ("true", "elapsed"):
            raise ValueError(f"tool_time must be 'true' or 'elapsed', got {tool_time!r}")
        self.by_job = order == "job"
        self.true_tool_time = tool_time == "true"
        self.discard = KVAction.CACHE if lazy_discard else KVAction.DISCARD
        self.head_of_line_blocking = not skip_unfit  # type: ignore[misc]
        self.active_swap = active_swap

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

    def remaining(self, job: Job, now: float) -> float:
        """The interception's remaining time: its true duration minus what has run, or the
        elapsed time as the prediction."""
        tool = job.segment.tool
        if self.true_tool_time and tool is not None:
            return tool_time_left(job, now, tool.latency)
        return tool_elapsed(job, now)

    def _decide(self, job: Job, kv: KVContext) -> KVAction:
        own, left = job.num_computed_tokens, self.remaining(job, kv.now)
        service = self.service
        if self.active_swap:
            return least_waste(service, own, kv, left, self.discard)
        waste = service.prefill_time(own) * (own + other_tokens(own, kv))
        return self.discard if waste < left * own else KVAction.PRESERVE


@register
class InferCeptStrict(InferCept):
    """InferCept's code exactly: hard discard, head-of-line blocking (no strictly better
    variant of the mechanism's)."""

    name = "infercept-strict"

    def __init__(self, order: str = "job", tool_time: str = "true") -> None:
        super().__init__(order, tool_time, lazy_discard=False, skip_unfit=False)
