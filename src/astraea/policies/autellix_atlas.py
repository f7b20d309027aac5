"""``autellix-atlas``: Autellix's Adaptive Thread-Level Attained Service (arXiv 2502.13965,
sec. 4; restated in shared/ASTRAEA.md sec. 3).

Rule. For programs that are DAGs of calls, a call's priority is the largest, over its parent
calls, of the parent's priority plus the parent's runtime: the service along the critical
path that leads to the call (a root call starts at 0). Same discretization into queues,
FCFS within a queue and starvation promotion (waiting / service >= ``beta``) as PLAS.

Here. Our jobs are chains: each call has exactly one parent, the previous call, so the rule
reduces to the cumulative service of the job's completed calls. We implement it with the
parent rule itself: when a call ends, the next call's priority (kept in ``policy_state``) is
the ended call's priority plus its runtime, estimated from the tokens it computed (prefill,
recomputation included, and generated) with the profile's service-time model, as in PLAS.
The difference from PLAS is only that a call's priority is fixed while it runs (PLAS also
counts the running call's own progress, which matters for a call that was preempted and for
choosing a preemption victim).
"""

from __future__ import annotations

from astraea.core.job import Job
from astraea.policies.autellix_plas import AutellixPlas
from astraea.policies.registry import register

PRIORITY, COMPUTED_AT_READY, GENERATED_AT_READY = "atlas_priority", "atlas_c0", "atlas_g0"


@register
class AutellixAtlas(AutellixPlas):
    name = "autellix-atlas"

    def attained(self, job: Job) -> float:
        return job.policy_state.get(PRIORITY, 0.0)

    def on_arrival(self, job: Job, now: float) -> dict[str, float]:
        return {PRIORITY: 0.0, COMPUTED_AT_READY: 0.0, GENERATED_AT_READY: 0.0}

    def on_segment_end(self, job: Job, now: float) -> dict[str, float]:
        state, service = job.policy_state, self.service
        generated = job.num_generated_total - state.get(GENERATED_AT_READY, 0.0)
        computed = job.num_computed_total - state.get(COMPUTED_AT_READY, 0.0)
        runtime = (computed - generated) * service.prefill_per_token
        runtime += generated * service.decode_per_token
        return {
            PRIORITY: state.get(PRIORITY, 0.0) + runtime,
            COMPUTED_AT_READY: float(job.num_computed_total),
            GENERATED_AT_READY: float(job.num_generated_total),
        }
