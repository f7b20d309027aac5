"""``vllm-priority``: vLLM V1 served with ``--scheduling-policy priority``
(vllm-project/vllm, ``vllm/v1/core/sched``: the priority request queue and the preemption
rule of ``scheduler.py``).

Rule. The waiting queue is a heap keyed by ``(priority, arrival)`` of each request, lowest
first; when a running request cannot get a KV block, the running request with the largest
``(priority, arrival)`` is preempted (by recompute: its full blocks stay in the LRU prefix
cache). Everything else (FCFS tie-break by arrival, admission stopping at the first request
that does not fit, finished calls' KV left in the prefix cache) is vLLM's default, as in
``vllm-fcfs``.

The priority an agent client sends. vLLM takes the priority from the client; for agent
traffic we use a common client choice, "finish started work first": a job's follow-up call
(``segment_index > 0``) is sent with priority 0 and a job's first call with priority 1.
``arrival`` is the call's own arrival (vLLM sees each call as a new request), so within a
priority class the order is vLLM's FCFS.
"""

from __future__ import annotations

from collections.abc import Sequence

from astraea.core.job import Job
from astraea.core.policy import Policy
from astraea.policies.registry import register


@register
class VllmPriority(Policy):
    name = "vllm-priority"

    def priority(self, job: Job, now: float) -> tuple[int, float]:
        return (0 if job.segment_index > 0 else 1, job.ready_since)

    def preemption_victim(self, candidates: Sequence[Job], now: float) -> Job:
        return max(candidates, key=lambda j: (0 if j.segment_index > 0 else 1, j.ready_since))
