"""``autellix-plas``: Autellix's Program-Level Attained Service as its public scheduler does it
(Luo et al., "Autellix: An Efficient Serving Engine for LLM Agents as General Programs",
arXiv 2502.13965, sec. 4.2, Eq. 1 and Algorithm 1; code kungfu-team/autellix,
``vllm/v1/core/sched/autellix/plas_scheduler.py`` ``PLASScheduler``, its mixin
``policy_core.py`` ``QuantumMlfqMixin`` and ``mlfq.py`` ``MlfqBinner``).

Rule (each item is the public code's; the function named is where it lives there).

* Service is counted in engine steps: one unit per step that samples a token for the call
  (``QuantumMlfqMixin._update_after_schedule``: non-final prefill chunks are not charged;
  ``attained_service.py``: recomputed steps still count). Here: the call's output tokens.
* Arrival: a call enters the queue of its program's attained service, the sum over the
  program's completed calls (``PLASScheduler.add_request``, ``ProcessTable.add_service``),
  binned by the thresholds ``(2, 4, 8, 16, 32, 64)`` into ``K = 7`` queues, queue 0 the top
  (``MlfqBinner.bin``: the number of thresholds <= service).
* Quantum demotion: queue ``k`` grants a quantum of ``(1, 2, 4, 8, 16, 32, 64)[k]`` steps;
  a call that spends it drops one queue and gets the next quantum (``_update_after_schedule``,
  ``MlfqBinner.demote``). So a long call sinks while it runs, whatever its program's past.
* Order: ``(queue, call arrival)``, vLLM's priority queue (FCFS within a queue). A call
  preempted for memory keeps its queue and arrival.
* Starvation: a waiting call outside queue 0 whose program-level ratio
  ``(W_p + W_c) / max(1, T_p + T_c)`` reaches ``beta = 8`` moves to queue 0 with a fresh
  quantum, and only its call-level windows ``W_c``, ``T_c`` restart
  (``_accrue_wait_and_promote``, ``_promote_to_top``, ``MlfqBinner.anti_starvation``); a
  finished call adds its attained service to ``T_p`` and what is left of its wait window to
  ``W_p`` (``PLASScheduler._fold_completed_calls``).
* Proactive preemption: while the batch is full (``max_num_seqs`` calls run) and the best
  waiting call sits in a strictly better queue than the worst running call (the largest
  ``(queue, arrival)``), that running call is preempted by recompute, at most once a step
  (``QuantumMlfqMixin._proactively_preempt``, ``_MAX_PROACTIVE_PREEMPTIONS_PER_STEP = 1``),
  through the mechanism's ``displace`` hook. For memory, vLLM's priority rule: the running
  call with the largest ``(queue, arrival)`` goes first.
* KV is vLLM's: prefix cache at tool calls and on preemption; admission stops at the first
  call that does not fit (vLLM V1's ``schedule`` breaks there; Autellix keeps it).

Here. The public code counts a call's wait ``W_c`` in scheduler iterations and its service
``T_c`` in steps: both count engine iterations. Our policies see time, not iterations, so the
starvation ratio uses seconds for both: waiting seconds over running seconds (the paper's
definition, which the iteration counts proxy), with one step time
(``decode_per_token``) as the floor of the denominator. The quanta and the arrival bins stay
in steps (output tokens), as in the public code. The mechanism may preempt for memory only
running calls it has not scheduled yet in the step (vLLM may pick any running call).
``displace_on_memory=True`` also displaces while memory (not the batch size) held the last
admission round back: an extension, off by default (not in the public code).

Measured (seed 0, ``astraea compare -w W -n N -r R --policies vllm-fcfs,autellix-plas``;
avg JCT s; docs/results.md, "Peers as their sources do them"): with these constants a
program reaches the last queue within its first call, so the order is close to FCFS by
call: InferCept mix (7B, 600 jobs) 112 / 185 at 3 / 4 jobs/s (vllm-fcfs 112 / 183; the
previous rule, never preempting, seconds of service, no quanta: 113 / 185); Autellix mix
(300 jobs) 74.4 / 81.5 at 0.25 / 0.3 (vllm-fcfs 73.8 / 82.9; previous 83.2 / 88.2).
``displace_on_memory=True``: 112.5 / 193.1 on the InferCept mix, so it stays off.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from astraea.core.job import Job, JobStatus
from astraea.core.policy import KVContext
from astraea.policies.common import ServicePolicy
from astraea.policies.registry import register

THRESHOLDS = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
QUANTA = (1, 2, 4, 8, 16, 32, 64)
BETA = 8.0
# policy_state keys: the program's windows over its completed calls, and the waiting time
# the job had when its current call became ready.
PROGRAM_SERVICE, PROGRAM_WAIT, PROGRAM_RUN = "las_service", "las_wait", "las_run"
WAIT_AT_READY = "las_wait0"


class _Reset:
    """Where a call's queue and windows restarted: at a starvation promotion."""

    __slots__ = ("run", "tokens", "wait")

    def __init__(self, tokens: int, wait: float, run: float) -> None:
        self.tokens, self.wait, self.run = tokens, wait, run


@register
class AutellixPlas(ServicePolicy):
    name = "autellix-plas"
    static_priority = False

    def __init__(
        self,
        thresholds: Sequence[float] = THRESHOLDS,
        quanta: Sequence[int] = QUANTA,
        beta: float = BETA,
        max_proactive_preemptions: int = 1,
        displace_on_memory: bool = False,
    ) -> None:
        thresholds, quanta = tuple(float(t) for t in thresholds), tuple(int(q) for q in quanta)
        if len(quanta) != len(thresholds) + 1 or not all(q >= 1 for q in quanta):
            raise ValueError("need one quantum >= 1 per queue, one threshold fewer")
        if any(t <= 0 for t in thresholds) or any(b <= a for a, b in pairwise(thresholds)):
            raise ValueError("thresholds must be positive and strictly increasing")
        if beta <= 0 or max_proactive_preemptions < 0:
            raise ValueError("need beta > 0 and max_proactive_preemptions >= 0")
        self.thresholds, self.quanta, self.beta = thresholds, quanta, beta
        self.num_queues = len(quanta)
        self.max_displacements = max_proactive_preemptions  # type: ignore[misc]
        self.displace_on_memory = displace_on_memory
        self._resets: dict[str, _Reset] = {}

    # ---- service and windows -----------------------------------------------------------------
    def program_service(self, job: Job) -> float:
        """Steps the program's completed calls were served (the arrival bin's input)."""
        return job.policy_state.get(PROGRAM_SERVICE, 0.0)

    def arrival_queue(self, service: float) -> int:
        """``MlfqBinner.bin``: how many thresholds ``service`` has reached."""
        level = 0
        for threshold in self.thresholds:
            if service < threshold:
                break
            level += 1
        return min(level, self.num_queues - 1)

    def queue(self, job: Job) -> int:
        """The call's queue now: its start queue, demoted once per quantum it has spent."""
        reset = self._resets.get(job.job_id)
        if reset is None:
            level, steps = self.arrival_queue(self.program_service(job)), job.num_output_tokens
        else:
            level, steps = 0, job.num_output_tokens - reset.tokens
        last = self.num_queues - 1
        while level < last and steps >= self.quanta[level]:
            steps -= self.quanta[level]
            level += 1
        return level

    @staticmethod
    def _waited(job: Job, now: float) -> float:
        waited = job.total_waiting_time
        if job.status is JobStatus.WAITING:
            waited += now - job.waiting_since
        return waited

    def _call_windows(self, job: Job, now: float) -> tuple[float, float]:
        """(W_c, T_c) in seconds since the call became ready or was last promoted."""
        waited = self._waited(job, now) - job.policy_state.get(WAIT_AT_READY, 0.0)
        ran = max(0.0, now - job.ready_since - waited)
        reset = self._resets.get(job.job_id)
        if reset is not None:
            return waited - reset.wait, ran - reset.run
        return waited, ran

    def starving(self, job: Job, now: float) -> bool:
        state = job.policy_state
        w_c, t_c = self._call_windows(job, now)
        wait = state.get(PROGRAM_WAIT, 0.0) + w_c
        service = state.get(PROGRAM_RUN, 0.0) + t_c
        return wait / max(self.service.decode_per_token, service) >= self.beta

    # ---- order --------------------------------------------------------------------------------
    def priority(self, job: Job, now: float) -> tuple[int, float, str]:
        level = self.queue(job)
        if level and job.status is JobStatus.WAITING and self.starving(job, now):
            # Promotion to queue 0, remembered: the call's quantum and windows restart here.
            waited = self._waited(job, now) - job.policy_state.get(WAIT_AT_READY, 0.0)
            ran = max(0.0, now - job.ready_since - waited)
            self._resets[job.job_id] = _Reset(job.num_output_tokens, waited, ran)
            level = 0
        return (level, job.ready_since, job.job_id)

    def _rank(self, job: Job) -> tuple[int, float]:
        return (self.queue(job), job.ready_since)

    def preemption_victim(self, candidates: Sequence[Job], now: float) -> Job:
        return max(candidates, key=self._rank)  # vLLM's priority rule: max (priority, arrival)

    def displace(
        self, waiting: Job, running: Sequence[Job], batch_full: bool, kv: KVContext
    ) -> Job | None:
        if not (batch_full or self.displace_on_memory):
            return None
        worst = max(running, key=self._rank)
        return worst if self.priority(waiting, kv.now)[0] < self.queue(worst) else None

    # ---- per-call state ----------------------------------------------------------------------
    def on_arrival(self, job: Job, now: float) -> dict[str, float]:
        return {PROGRAM_SERVICE: 0.0, PROGRAM_WAIT: 0.0, PROGRAM_RUN: 0.0, WAIT_AT_READY: 0.0}

    def on_tool_return(self, job: Job, now: float) -> dict[str, float]:
        self._resets.pop(job.job_id, None)
        return {WAIT_AT_READY: job.total_waiting_time}

    def fold_service(self, job: Job) -> float:
        """The program's service after its current call (PLAS: the sum rule)."""
        return self.program_service(job) + job.num_output_tokens

    def on_segment_end(self, job: Job, now: float) -> dict[str, float]:
        state = job.policy_state
        w_c, _ = self._call_windows(job, now)
        waited = self._waited(job, now) - state.get(WAIT_AT_READY, 0.0)
        ran = max(0.0, now - job.ready_since - waited)  # the call's whole running time
        self._resets.pop(job.job_id, None)
        return {
            PROGRAM_SERVICE: self.fold_service(job),
            PROGRAM_WAIT: state.get(PROGRAM_WAIT, 0.0) + w_c,
            PROGRAM_RUN: state.get(PROGRAM_RUN, 0.0) + ran,
        }

    def on_job_end(self, job: Job) -> None:
        self._resets.pop(job.job_id, None)
