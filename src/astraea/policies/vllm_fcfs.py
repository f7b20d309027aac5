"""``vllm-fcfs``: how vLLM V1 treats agent traffic (vllm-project/vllm, ``vllm/v1/core/sched``).

Every LLM call is an independent request in one FCFS queue ordered by the call's own
arrival (a job's next call queues behind everything that arrived while its tool ran).
Admission stops at the first request that does not fit. When a running request cannot get
a block, the newest running request is preempted by recompute; its full blocks, like those
of a finished call, go to the LRU prefix cache, from which the job's next call reuses its
context if nothing evicted them meanwhile. All of this is the ``Policy`` defaults.
"""

from __future__ import annotations

from astraea.core.policy import Policy
from astraea.policies.registry import register


@register
class VllmFcfs(Policy):
    name = "vllm-fcfs"
