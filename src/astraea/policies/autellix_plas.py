"""``autellix-plas``: Autellix's Program-Level Attained Service (Luo et al., "Autellix: An
Efficient Serving Engine for LLM Agents as General Programs", arXiv 2502.13965, sec. 4;
restated in shared/ASTRAEA.md sec. 3).

Rule. A call is ranked by the service its whole program (job) has already received, least
first: a job that has computed little (short so far) overtakes one that has computed a lot,
without knowing either's length (least attained service, non-clairvoyant). The continuous
value is discretized into ``num_queues`` queues with exponentially growing boundaries, queue
``k >= 1`` holding service in ``[base * growth**(k-1), base * growth**k)`` and queue 0 below
``base``; within a queue, calls are served FCFS by their arrival. Starvation: a job whose
accumulated waiting time divided by its attained service reaches ``beta`` is moved to the
top queue.

Here. Attained service is estimated from the tokens the engine computed for the job with
the profile's service-time model: prefill tokens (``num_computed_total`` minus generated,
recomputation included, as measured time would include it) times the prefill cost per token,
plus generated tokens times the decode step time. Waiting time is the job's accumulated time
in the waiting queue (tool time excluded). Running calls are preempted only when memory runs
out (then the running call of the lowest priority goes first); a priority change does not
interrupt a running call. KV handling is vLLM's (Autellix runs on vLLM): prefix cache at tool
calls, recompute on preemption. ``base``, ``growth`` and ``beta`` are not fixed by what we
could read of the paper; the defaults below are ours (``base`` ~ one call's service on the
InferCept workload) and are constructor parameters.
"""

from __future__ import annotations

import math

from astraea.core.job import Job, JobStatus
from astraea.policies.common import ServicePolicy
from astraea.policies.registry import register


@register
class AutellixPlas(ServicePolicy):
    name = "autellix-plas"
    static_priority = False

    def __init__(
        self,
        num_queues: int = 8,
        base: float = 1.0,
        growth: float = 2.0,
        beta: float = 2.0,
    ) -> None:
        if num_queues < 1 or base <= 0 or growth <= 1 or beta <= 0:
            raise ValueError("need num_queues >= 1, base > 0, growth > 1, beta > 0")
        self.num_queues = num_queues
        self.base = base
        self.log_growth = math.log(growth)
        self.beta = beta

    def attained(self, job: Job) -> float:
        """Service (s) the job has received so far."""
        service = self.service
        generated = job.num_generated_total
        prefill = job.num_computed_total - generated
        return prefill * service.prefill_per_token + generated * service.decode_per_token

    def queue(self, service: float) -> int:
        if service < self.base:
            return 0
        level = 1 + int(math.log(service / self.base) / self.log_growth)
        return min(level, self.num_queues - 1)

    def priority(self, job: Job, now: float) -> tuple[int, float]:
        service = self.attained(job)
        waited = job.total_waiting_time
        if job.status == JobStatus.WAITING:
            waited += now - job.waiting_since
        starved = service <= 0 or waited >= self.beta * service
        return (0 if starved else self.queue(service), job.ready_since)
