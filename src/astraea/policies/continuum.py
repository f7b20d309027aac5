"""``continuum``: Continuum's tool-aware KV time-to-live with program-level FCFS (Li et al.,
"Continuum: Efficient and Robust Multi-Turn LLM Agent Scheduling with KV Cache Time-to-Live",
arXiv 2511.02230, secs. 4-5; preview code Hanchenli/vllm-continuum; restated in shared/
ASTRAEA.md sec. 3).

Order. Program-level FCFS: calls are ranked by their job's arrival, and a call whose context
is still pinned when its tool returns goes ahead of every unpinned call (it resumes at once,
in the memory it kept).

KV at a tool call. The job's KV is pinned on the accelerator (PRESERVE) for a time-to-live
``tau`` chosen per call from the empirical distribution F of that tool's past durations, as
the paper's cost-benefit choice: ``tau* = argmax_tau F(tau) * Benefit - Cost(tau)``. The
benefit, earned if the tool returns within ``tau``, is what eviction would cost the job: the
reload (recompute) of its context plus the queueing delay an evicted turn suffers before it
is admitted again. The cost is the memory the pin holds meanwhile. When ``tau`` runs out
(``review_idle``) the pin is released to vLLM's LRU prefix cache (CACHE), so an unusually
long tool never holds memory for long; under memory pressure the mechanism also takes pins
back early (oldest tool call first), like Continuum's unpinning of victims. ``tau* = 0``
means no pin.

Our quantities (the paper's exact pricing was not readable to us; these are stated choices):
* F: the tool's recent durations (``ToolLatencyPredictor``, fed at every tool return);
  candidate ``tau`` are its quantiles at ``q = 0, 1/n, ..., 1``. Until a tool has
  ``min_samples`` samples, F is exponential with the predictor's mean (the paper's
  cold-start assumption); ``default_tool_time`` seeds that mean before anything is seen.
* Benefit (s) = ``T_prefill(context)`` + an exponential moving average of the waiting time
  of calls that had to queue without a pinned context (first calls and unpinned returns).
* Cost(tau) (s) = ``E[min(T, tau)]`` (expected pinned time) x the pinned fraction of the
  KV pool x the number of other active jobs: if memory bounds the batch, every other job
  is slowed by that fraction for that long.
``ttl_quantile`` (e.g. 0.9) replaces the rule by a plain quantile of F, as an ablation.
"""

from __future__ import annotations

import math

from astraea.core.job import Job, KVLocation
from astraea.core.policy import KVAction, KVContext
from astraea.policies.common import ServicePolicy
from astraea.policies.registry import register
from astraea.predict.tool_latency import ToolLatencyPredictor

WAIT_AT_READY, PINNED_AT_READY = "cont_wait0", "cont_pinned"


@register
class Continuum(ServicePolicy):
    name = "continuum"
    reviews_idle = True

    def __init__(
        self,
        grid: int = 20,
        min_samples: int = 8,
        default_tool_time: float = 1.0,
        wait_smoothing: float = 0.1,
        ttl_quantile: float | None = None,
    ) -> None:
        if grid < 1 or min_samples < 1 or default_tool_time <= 0:
            raise ValueError("need grid >= 1, min_samples >= 1, default_tool_time > 0")
        if not 0 < wait_smoothing <= 1:
            raise ValueError("wait_smoothing must be in (0, 1]")
        if ttl_quantile is not None and not 0 <= ttl_quantile <= 1:
            raise ValueError("ttl_quantile must be in [0, 1]")
        self.grid = grid
        self.min_samples = min_samples
        self.wait_smoothing = wait_smoothing
        self.ttl_quantile = ttl_quantile
        self.tools = ToolLatencyPredictor(default=default_tool_time)
        self.queue_delay = 0.0  # EWMA of an unpinned call's wait (s)
        self.active_jobs = 0
        self.deadline: dict[str, float] = {}  # job_id -> when its pin expires

    # ---- order ----------------------------------------------------------------------------
    def priority(self, job: Job, now: float) -> tuple[int, float, str]:
        pinned = job.segment_index > 0 and job.kv_location is KVLocation.DEVICE
        return (0 if pinned else 1, job.arrival, job.job_id)

    # ---- bookkeeping ----------------------------------------------------------------------
    def on_arrival(self, job: Job, now: float) -> dict[str, float]:
        self.active_jobs += 1
        return {WAIT_AT_READY: job.total_waiting_time, PINNED_AT_READY: 0.0}

    def on_job_end(self, job: Job) -> None:
        self.deadline.pop(job.job_id, None)

    def on_tool_return(self, job: Job, now: float) -> dict[str, float]:
        tool = job.segment.tool
        if tool is not None:
            self.tools.observe(tool.name, now - job.tool_started)
        self.deadline.pop(job.job_id, None)
        pinned = job.kv_location is KVLocation.DEVICE
        return {WAIT_AT_READY: job.total_waiting_time, PINNED_AT_READY: float(pinned)}

    def on_segment_end(self, job: Job, now: float) -> None:
        state = job.policy_state
        if not state.get(PINNED_AT_READY, 0.0):
            waited = job.total_waiting_time - state.get(WAIT_AT_READY, 0.0)
            self.queue_delay += self.wait_smoothing * (waited - self.queue_delay)
        if job.is_last_segment:
            self.active_jobs -= 1
        return None

    # ---- KV -------------------------------------------------------------------------------
    def on_tool_call(self, job: Job, kv: KVContext) -> KVAction:
        ttl = self.time_to_live(job, kv)
        if ttl <= 0:
            return KVAction.CACHE
        self.deadline[job.job_id] = kv.now + ttl
        return KVAction.PRESERVE

    def review_idle(self, job: Job, kv: KVContext) -> KVAction:
        if kv.now >= self.deadline.get(job.job_id, math.inf):
            del self.deadline[job.job_id]
            return KVAction.CACHE
        return KVAction.PRESERVE

    def time_to_live(self, job: Job, kv: KVContext) -> float:
        tool = job.segment.tool
        assert tool is not None
        taus = self._candidates(tool.name)
        if self.ttl_quantile is not None:
            index = round(self.ttl_quantile * (len(taus) - 1))
            return taus[index]
        own = job.num_computed_tokens
        benefit = self.service.prefill_time(own) + self.queue_delay
        total_tokens = kv.device_blocks_total * kv.block_size
        price = (own / total_tokens) * max(0, self.active_jobs - 1) if total_tokens else 0.0
        best_tau, best_utility, held = 0.0, 0.0, 0.0
        step = 1.0 / (len(taus) - 1)
        for k in range(1, len(taus)):
            q = k * step
            # E[min(T, tau_k)] = integral of the quantile function up to q, plus tau_k (1 - q).
            held += 0.5 * (taus[k - 1] + taus[k]) * step
            utility = q * benefit - price * (held + taus[k] * (1.0 - q))
            if utility > best_utility:
                best_tau, best_utility = taus[k], utility
        return best_tau

    def _candidates(self, tool: str) -> list[float]:
        """Quantiles of the tool's duration at q = 0, 1/grid, ..., 1."""
        n = self.grid
        if self.tools.samples(tool) >= self.min_samples:
            return [self.tools.quantile(tool, k / n) for k in range(n + 1)]
        mean = self.tools.mean(tool)
        # Exponential quantiles; the last point (q = 1) is capped at the 1 - 1/(2n) quantile.
        return [-mean * math.log(1.0 - min(k / n, 1.0 - 0.5 / n)) for k in range(n + 1)]
