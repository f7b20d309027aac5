"""The pieces of astraea's queues that are measured, not fixed: a call's cost, the queue
quotas, and the memory scale of HRRN's service time.

The Astraea paper (sec. 4; shared/ASTRAEA.md sec. 2.2) moves jobs between queues by a call's
token cost against its queue's quota and leaves open what the cost counts and what the
quotas are. These are our answers, each measured in docs/results.md ("astraea's queues").
"""

from __future__ import annotations

import bisect

from astraea.core.job import Job, KVLocation
from astraea.predict.service import ServiceTimeModel

ADAPTIVE_MIN_SAMPLES = 50  # below this many observed calls, adaptive quotas use the fixed ones
ADAPTIVE_MAX_SAMPLES = 4096  # past this the sample is thinned (every other value dropped)


def call_cost(service: ServiceTimeModel, job: Job, how: str) -> float:
    """The token cost of the call ``job`` just finished.

    "tokens": new input + output tokens, the paper's literal reading. "service": the call's
    compute time in decode-token units, so a prefill token weighs what it costs (a long
    retrieved prompt is cheap to prefill and must not mark its job compute-intensive).
    """
    new_input, output = job.segment.input_tokens, job.num_output_tokens
    if how == "tokens":
        return float(new_input + output)
    before = max(job.num_computed_tokens - new_input - output, 0)
    return service.segment_time(new_input, output, before) / service.decode_per_token


class Quotas:
    """Per-queue quotas: ``base * growth**level``, or with ``adaptive`` the quantile
    ``(level + 1) / num_queues`` of the call costs seen so far."""

    def __init__(self, base: float, growth: float, num_queues: int, adaptive: bool) -> None:
        self.base, self.growth, self.num_queues, self.adaptive = base, growth, num_queues, adaptive
        self._costs: list[float] = []  # sorted sample of observed call costs

    def observe(self, cost: float) -> None:
        if not self.adaptive:
            return
        bisect.insort(self._costs, cost)
        if len(self._costs) > ADAPTIVE_MAX_SAMPLES:
            del self._costs[::2]

    def quota(self, level: int) -> float:
        costs = self._costs
        if len(costs) < ADAPTIVE_MIN_SAMPLES:
            return self.base * self.growth**level
        q = (level + 1) / self.num_queues
        return costs[min(int(q * len(costs)), len(costs) - 1)]


class ClaimScale:
    """How much KV a call must claim, relative to the mean claim of finished calls.

    A call claims its context that is not resident on the device (to prefill, swap in or
    recompute) plus the output it will write. Weighing HRRN's service time by this ratio
    orders by memory-time when memory is what runs out (LAMPS's observation, arXiv
    2410.18248), and a context kept through its tool call claims almost nothing, so its job
    resumes soon and gives that memory back.
    """

    def __init__(self, smoothing: float = 0.02) -> None:
        self.smoothing = smoothing
        self.mean: float | None = None  # running mean of the context a call ends with

    def observe(self, job: Job) -> None:
        ended = float(job.num_context_tokens)
        self.mean = ended if self.mean is None else self.mean + self.smoothing * (ended - self.mean)

    def claim(self, job: Job, remaining_output: float) -> float:
        """Tokens of KV the call must claim (at least 1)."""
        claim = job.num_context_tokens + remaining_output
        if job.kv_location is KVLocation.DEVICE:
            claim -= job.num_computed_tokens
        return max(claim, 1.0)
