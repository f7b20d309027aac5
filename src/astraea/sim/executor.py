"""The simulated executor: a step takes the time the cost profile says, nothing is computed.

KV copies between tiers either run before the step's compute and add to its time (serial,
``overlap_copies`` off), or on copy engines beside it (``copy_engine.py``): then the step
takes its compute time alone and reports the copies that finished meanwhile.
"""

from __future__ import annotations

import math

from astraea.core.plan import StepPlan, StepResult
from astraea.sim.copy_engine import CopyEngines
from astraea.sim.profiles import CostProfile


class SimulatedExecutor:
    """Times plans with ``profile``; copies add to the step, or overlap it (``overlap``)."""

    def __init__(self, profile: CostProfile, block_size: int, overlap: bool = False) -> None:
        self.profile = profile
        self.block_size = block_size
        self.copies = CopyEngines(profile, block_size) if overlap else None

    def execute(self, plan: StepPlan, now: float, horizon: float = math.inf) -> StepResult:
        """Run ``plan``; a multi-step decode plan stops after the step during which
        ``horizon`` (the next outside event, or a copy finishing) falls, exactly where a
        one-step loop would first see that event."""
        copies = self.copies
        if copies is None:
            return self._compute(plan, now, horizon, serial_copies=True)
        copies.submit(plan.copies, now)
        if not plan.seqs:  # only copies: they proceed while the engine waits
            return StepResult(elapsed=0.0, copies_done=copies.collect(now))
        result = self._compute(plan, now, min(horizon, copies.next_done), serial_copies=False)
        done = copies.collect(now + result.elapsed)
        return StepResult(result.elapsed, result.num_steps, copies_done=done)

    def next_copy_done(self) -> float:
        """When the next copy in flight finishes (inf: none is, or copies are serial)."""
        return self.copies.next_done if self.copies is not None else math.inf

    def collect_copies(self, now: float) -> tuple[int, ...]:
        return self.copies.collect(now) if self.copies is not None else ()

    def _compute(
        self, plan: StepPlan, now: float, horizon: float, serial_copies: bool
    ) -> StepResult:
        profile = self.profile
        first = profile.iteration_time(
            plan.num_prefill_tokens, plan.num_decode_seqs, plan.sum_kv_tokens
        )
        if serial_copies and plan.copies:
            first += profile.swap_time(plan.num_swapped_blocks * self.block_size)
        steps = plan.num_steps
        if steps == 1 or now + first >= horizon:
            return StepResult(elapsed=first, num_steps=1)
        # Step i (0-based) of a pure-decode stretch attends to n more KV tokens than step i-1.
        growth = profile.e * plan.num_decode_seqs
        if _stretch_time(steps, first, growth) > horizon - now:
            steps = self._steps_until(horizon - now, first, growth)
        return StepResult(elapsed=_stretch_time(steps, first, growth), num_steps=steps)

    @staticmethod
    def _steps_until(span: float, first: float, growth: float) -> int:
        """Fewest steps whose total time reaches ``span`` (>= 1); the caller checked that
        the whole stretch would pass it, so the answer is below the plan's step count."""
        if growth <= 0:
            k = math.ceil(span / first)
        else:
            b = first - growth / 2
            k = math.ceil((-b + math.sqrt(b * b + 2 * growth * span)) / growth)
        k = max(1, k)
        while k > 1 and _stretch_time(k - 1, first, growth) >= span:
            k -= 1
        while _stretch_time(k, first, growth) < span:
            k += 1
        return k


def _stretch_time(steps: int, first: float, growth: float) -> float:
    return steps * first + growth * steps * (steps - 1) / 2
