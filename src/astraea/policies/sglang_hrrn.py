"""``sglang-hrrn``: SGLang's request-level Highest Response Ratio Next
(sgl-project/sglang pull request 32911, "Add HRRN schedule policy"; restated in shared/
ASTRAEA.md sec. 3).

Rule. Each LLM call is an independent request. Waiting requests are served highest response
ratio first, ``ratio = 1 + waited / work``, where the work of a prefill is its uncached
prompt length and the wait is measured on a token clock: the number of tokens the engine
processed since the request arrived (a clock that advances with the engine's work, not wall
time, so a ratio is "how many of my own prefills the engine has done for others meanwhile").
Short prompts go first, and every prompt's ratio grows while it waits, so none starves.

Here. The token clock counts every token the engine computes (``on_step``). A call's
arrival is when it becomes ready: a job's arrival (``on_arrival``) or its tool's return
(``on_tool_return``, called just before the next call is queued); the clock value then is
kept in ``policy_state``. The uncached prompt length is approximated by
``num_context_tokens - num_computed_tokens``: KV kept on the device (preserved) counts as
cached, but a prefix-cache hit on blocks left in the LRU cache is not visible to a policy,
so such a call looks longer than SGLang's radix cache would make it. KV handling is vLLM's
(``Policy`` defaults: prefix cache at tool calls, recompute on preemption, the newest running
request preempted first), and admission stops at the first request that does not fit, as
SGLang's prefill adder does.
"""

from __future__ import annotations

from collections.abc import Sequence

from astraea.core.job import Job
from astraea.core.policy import Policy
from astraea.policies.registry import register

READY_CLOCK = "hrrn_ready_clock"


@register
class SglangHrrn(Policy):
    name = "sglang-hrrn"
    static_priority = False

    def __init__(self) -> None:
        self.clock = 0.0  # tokens the engine has computed so far

    def on_step(self, num_tokens: int) -> None:
        self.clock += num_tokens

    def on_arrival(self, job: Job, now: float) -> dict[str, float]:
        return {READY_CLOCK: self.clock}

    def on_tool_return(self, job: Job, now: float) -> dict[str, float]:
        return {READY_CLOCK: self.clock}

    def ratio(self, job: Job) -> float:
        waited = self.clock - job.policy_state.get(READY_CLOCK, self.clock)
        uncached = max(1, job.num_context_tokens - job.num_computed_tokens)
        return 1.0 + waited / uncached

    def priority(self, job: Job, now: float) -> tuple[float, float]:
        return (-self.ratio(job), job.ready_since)

    def preemption_victim(self, candidates: Sequence[Job], now: float) -> Job:
        return candidates[-1]  # vLLM's rule: the newest running request
