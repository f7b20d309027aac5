"""``fcfs-job``: first come, first served by *job* arrival (program-level FCFS).

A returning call of an older job goes ahead of every call of younger jobs, so jobs finish in
arrival order as far as memory allows; KV handling is vLLM's (LRU prefix cache, preemption
by recompute). The simplest job-aware baseline, and the ordering Continuum and InferCept
start from.
"""

from __future__ import annotations

from astraea.core.job import Job
from astraea.core.policy import Policy
from astraea.policies.registry import register


@register
class FcfsJob(Policy):
    name = "fcfs-job"

    def priority(self, job: Job, now: float) -> tuple[float, str]:
        return (job.arrival, job.job_id)
