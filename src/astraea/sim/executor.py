"""The simulated executor: a step takes the time the cost profile says, nothing is computed."""

from __future__ import annotations

import math

from astraea.core.plan import StepPlan, StepResult
from astraea.sim.profiles import CostProfile


class SimulatedExecutor:
    """Times plans with ``profile``; swaps are added to the step (not overlapped)."""

    def __init__(self, profile: CostProfile, block_size: int) -> None:
        self.profile = profile
        self.block_size = block_size

    def execute(self, plan: StepPlan, now: float, horizon: float = math.inf) -> StepResult:
        """Run ``plan``; a multi-step decode plan stops after the step during which
        ``horizon`` (the next outside event) falls, exactly where a one-step loop would
        first see that event."""
        profile = self.profile
        first = profile.iteration_time(
            plan.num_prefill_tokens, plan.num_decode_seqs, plan.sum_kv_tokens
        )
        if plan.swap_in or plan.swap_out:
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
