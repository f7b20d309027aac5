"""``autellix-atlas``: Autellix's Adaptive Thread-Level Attained Service as its public scheduler
does it (arXiv 2502.13965, sec. 4.2, Eq. 2; code kungfu-team/autellix,
``vllm/v1/core/sched/autellix/atlas_scheduler.py`` ``ATLASScheduler``, with the same
``QuantumMlfqMixin`` as PLAS).

Rule. As ``autellix-plas`` (quantum demotion, program-level starvation promotion, proactive
preemption at a full batch, vLLM's KV handling), except for the program's scalar: a call
snapshots its program's critical path when it arrives, and when it ends the program keeps
``max(critical path, snapshot + the call's service)`` (``ATLASScheduler.add_request``,
``ProcessTable.update_critical_path``), where PLAS adds every call's service. The public code
needs no DAG: concurrent calls snapshot the same scalar and the max keeps the longest thread.

Here. Our jobs are chains: a call starts only after the previous one ended, so its snapshot
is the whole critical path so far and the max rule always grows it by the call's service:
ATLAS equals PLAS on these workloads, as the public code's docstring says of sequential
programs. The class keeps the max rule so that it stays right if jobs grow parallel calls.
"""

from __future__ import annotations

from astraea.core.job import Job
from astraea.policies.autellix_plas import PROGRAM_SERVICE, AutellixPlas
from astraea.policies.registry import register

SNAPSHOT = "atlas_start"


@register
class AutellixAtlas(AutellixPlas):
    name = "autellix-atlas"

    def on_arrival(self, job: Job, now: float) -> dict[str, float]:
        return {**super().on_arrival(job, now), SNAPSHOT: 0.0}

    def on_tool_return(self, job: Job, now: float) -> dict[str, float]:
        return {**super().on_tool_return(job, now), SNAPSHOT: self.program_service(job)}

    def fold_service(self, job: Job) -> float:
        start = job.policy_state.get(SNAPSHOT, 0.0)
        return max(job.policy_state.get(PROGRAM_SERVICE, 0.0), start + job.num_output_tokens)
