"""Admission: which waiting calls join the running batch this step, and with what KV.

One round walks the waiting queue in the policy's order under the step's token budget, the
sequence cap and KV memory, in two halves per call (the shape of nano-vllm's ``can_allocate``
/ ``allocate`` and mini-sglang's ``PrefillAdder``): ``_fit`` says what the call would compute
and how many blocks it needs given where its KV is; ``_take`` claims them and admits it. A
call that does not fit ends the round (vLLM's head-of-line blocking) or is skipped, within
``AdmissionRound``'s rule, which the vLLM plugin applies to its own queue too.
"""

from __future__ import annotations

from astraea.core import lifecycle
from astraea.core.config import SchedulerConfig
from astraea.core.counters import SchedulerCounters
from astraea.core.idle_kv import IdleKV
from astraea.core.job import Job, KVLocation
from astraea.core.kv_cache import KVCacheManager, blocks_for
from astraea.core.plan import StepPlan
from astraea.core.waiting_queue import WaitingQueue


class AdmissionRound:
    """How many calls that do not fit a round may pass before it stops: none with
    head-of-line blocking (the round stops at the first), else ``max_skips`` (0: all)."""

    __slots__ = ("_misses_left",)

    def __init__(self, head_of_line_blocking: bool, max_skips: int, num_waiting: int) -> None:
        self._misses_left = 1 if head_of_line_blocking else (max_skips or num_waiting)

    def missed(self) -> bool:
        """A call did not fit; True when the round must stop here."""
        self._misses_left -= 1
        return self._misses_left <= 0


def fit_first(
    order: list[int],
    needs: list[int],
    free: int,
    head_of_line_blocking: bool,
    max_skips: int,
) -> list[int]:
    """``order`` with the calls whose blocks fit in ``free`` first, as one admission round
    would take them; what did not fit follows, then what the round never reached."""
    taken: list[int] = []
    missed: list[int] = []
    rule = AdmissionRound(head_of_line_blocking, max_skips, len(order))
    for pos, index in enumerate(order):
        if needs[index] <= free:
            taken.append(index)
            free -= needs[index]
            continue
        missed.append(index)
        if rule.missed():
            return taken + missed + order[pos + 1 :]
    return taken + missed


def prefill_chunk(uncomputed: int, budget: int, chunked: bool) -> int:
    """Tokens a call computes this step: all, or what the budget allows when chunking."""
    if uncomputed <= budget:
        return uncomputed
    return budget if chunked else 0


def admission_need(
    context: int, base: int, held: int, budget: int, block_size: int, chunked: bool = True
) -> tuple[int, int]:
    """(tokens a waiting call computes this step, blocks it needs beyond the ``held`` ones)
    when ``base`` of its ``context`` tokens are there already; (0, 0): its chunk does not
    fit the token budget."""
    n = prefill_chunk(context - base, budget, chunked)
    return n, (blocks_for(base + n, block_size) - held) if n else 0


class Admission:
    """Admits waiting calls; the only writer of ``memory_bound``, the finding that the last
    round left a call out for lack of KV memory (policies read it in ``KVContext``)."""

    def __init__(
        self,
        config: SchedulerConfig,
        kv: KVCacheManager,
        idle: IdleKV,
        counters: SchedulerCounters,
        head_of_line_blocking: bool,
    ) -> None:
        self.config, self.kv, self.idle, self.counters = config, kv, idle, counters
        self.head_of_line_blocking = head_of_line_blocking
        self.memory_bound = False

    def run(
        self, waiting: WaitingQueue, running: list[Job], plan: StepPlan, budget: int, now: float
    ) -> None:
        """One round: admitted calls join ``running`` and the plan, and leave ``waiting``."""
        cfg = self.config
        admitted: list[Job] = []
        max_seqs = cfg.max_num_seqs
        rule = AdmissionRound(self.head_of_line_blocking, cfg.max_admission_skips, len(waiting))
        self.memory_bound = False
        free = self.kv.num_free_device_blocks
        for job in waiting.ordered(now):
            if len(running) >= max_seqs or budget <= 0:
                break
            if free == 0 and job.kv_location is not KVLocation.DEVICE:
                n = 0  # needs at least one block and none is left: skip the bookkeeping
                self.memory_bound = True
            else:
                n = self._admit(job, budget, plan, now)
            if n:
                admitted.append(job)
                running.append(job)
                budget -= max(n, 0)
                free = self.kv.num_free_device_blocks
            elif rule.missed():
                break
        waiting.remove_many(admitted)

    def _admit(self, job: Job, budget: int, plan: StepPlan, now: float) -> int:
        """Tokens the call computes this step; 0: not admitted, -1: admitted, but it
        computes once its KV has landed (a swap-in on a copy engine beside compute)."""
        fit = self._fit(job, budget)
        if fit is None:
            return 0
        base, n = fit
        return n if self._take(job, base, n, plan, now) else -1

    def _fit(self, job: Job, budget: int) -> tuple[int, int] | None:
        """(tokens already there, tokens to compute) if the call fits now, else None."""
        kv, job_id, bs = self.kv, job.job_id, self.config.block_size
        location = job.kv_location
        context = job.num_context_tokens
        if location is KVLocation.CACHED:
            # At least the last token is computed anew, so the call can sample (vLLM's rule).
            reuse_blocks = min(kv.cached_tokens(job_id), context - 1) // bs
            base, held = reuse_blocks * bs, reuse_blocks
        elif location is KVLocation.HOST:
            base, held = kv.host_tokens(job_id), 0
        else:
            base, held = job.num_computed_tokens, kv.num_blocks(job_id)
        chunked = self.config.enable_chunked_prefill
        n, need = admission_need(context, base, held, budget, bs, chunked)
        if n == 0:
            return None
        exclude = job_id if location is KVLocation.CACHED else None
        if not kv.can_allocate(need, exclude_cached_of=exclude):
            self.memory_bound = True
            return None
        return base, n

    def _take(self, job: Job, base: int, n: int, plan: StepPlan, now: float) -> bool:
        """Claim the call's KV and admit it; False when it must wait for its KV to land."""
        kv, job_id = self.kv, job.job_id
        location = job.kv_location
        if location is KVLocation.CACHED:
            kv.claim_cached(job_id)
            kv.trim(job_id, base)
        elif location is KVLocation.HOST:
            copy = kv.swap_in(job_id)
            plan.copies.append(copy)
            self.counters.swapped_in_blocks += len(copy.src)
        lifecycle.admit(job, now, base)
        self.idle.forget(job_id)
        if job_id in kv.arriving:
            return False
        kv.ensure_tokens(job_id, base + n)
        plan.add_seq(job, n, kv.table(job_id))
        return True
