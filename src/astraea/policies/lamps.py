"""``lamps``: LAMPS, memory-over-time ranking for API-augmented requests (Shahout et al.,
"Fast Inference for Augmented Large Language Models", arXiv 2410.18248, secs. 3-4; restated
in shared/ASTRAEA.md sec. 3).

Rule. LLM inference is memory-bound, so a request's size is the memory it occupies over
time, not its token count. LAMPS predicts, for each request, its output length before the
API call and the API's duration, picks the handling of its KV during the API call that
wastes the least memory (InferCept's choice, with the predicted duration), and ranks
requests by the integral of their KV memory over the rest of their life *including* the
memory held during the API call under that handling: smallest first. A request that has
waited too long is served first regardless of its rank (starvation prevention).

Here (per call, since a job's next call is a new request to LAMPS). Memory-time in token-
seconds of the current call: the prefill holds the call's context ``c0`` for
``T_prefill``; decoding ``n`` more tokens holds about ``c0 + n/2`` for ``T_decode(n)``; then,
if the call ends in a tool call, with ``C = c0 + n`` and ``T_api`` the tool's mean latency
learned online: preserve holds ``C * T_api``, discard ``C * T_recompute(C)`` (paid at the
return), swap ``C * 2 * T_swap(C)``, whichever InferCept's least-waste rule picks
(``policies.common``) given the memory other jobs held at the last KV snapshot. ``n`` comes
from the output-length predictor (``oracle``, the true length of the current call, as
LAMPS's evaluation with a trained predictor approximates; or ``history``). At the tool call
itself the same rule decides with the live memory snapshot and the predicted duration,
once; while the call lasts, ``review_idle`` re-applies the rule with the predicted time
left, so preserved contexts are given back when memory grows tight (InferCept's engine, on
which LAMPS builds, takes memory back from paused requests when admission needs it; our
mechanism does so on its own only when the engine would stall). No prefetch. A call whose
context was preserved through its tool call goes first when it returns (in that engine it
rejoins the running batch directly, in the memory it kept). Starvation: a call waiting
longer than ``starvation_s`` seconds (ours; the paper's threshold value was not readable to
us) jumps ahead of the ranked ones, FCFS among such calls. Running calls are preempted only
for memory (the largest memory-time first), and a preempted call is swapped out when the
host has room.

Differences from LAMPS: our uncached-context estimate cannot see prefix-cache hits; LAMPS
predicts pre-API output length with a small model from the prompt, we use the chosen
output-length predictor; the discard we model is a full recompute (no chunked recompute).

Where our mechanism offers a strictly better form of what LAMPS does (run both ways, figures
in docs/results.md, "Peers as their sources do them"):

* ``lazy_discard``: LAMPS builds on InferCept's vLLM (0.2), which has no prefix cache, so a
  discard frees the blocks (WukLab/InferCept ``vllm/core/scheduler_v2.py``
  ``pause_by_recompute``); ``KVAction.CACHE`` frees them as much and keeps them reusable
  until something needs them.
* ``skip_unfit``: that engine's admission stops at the first waiting call that does not fit
  (``SchedulerV2._schedule``); with it a later call that fits may go.

``lamps`` is the stronger variant as measured; ``lamps-strict`` keeps hard discard and
head-of-line blocking. Avg JCT s, seed 0, InferCept mix (7B, 600 jobs, 2 / 3 / 4 jobs/s):
strict 81.4 / 101.1 / 120.3, lazy 75.6 / 93.2 / 118.0, lazy + ``skip_unfit`` 75.6 / 94.4 /
124.6 (skipping stays off); Autellix mix (300 jobs, 0.25 / 0.3 / 0.4): strict 58.3 / 64.7 /
76.1, lazy 54.4 / 61.5 / 70.7; Continuum mix: no change (61.7 at 0.1). The swap rule is
LAMPS's own (the least waste among preserve, discard and swap at the call, sec. 3), so a
context may be swapped out on an idle engine, where a swap stalls no one; unlike
InferCept's code, which swaps only when memory is needed.
"""

from __future__ import annotations

from astraea.core.job import Job, JobStatus, KVLocation
from astraea.core.policy import KVAction, KVContext, PolicyEnv, tool_time_left
from astraea.policies.common import ServicePolicy, least_waste, release_waste
from astraea.policies.registry import register
from astraea.predict.predictor import Predictor


@register
class Lamps(ServicePolicy):
    name = "lamps"
    static_priority = False
    reviews_idle = True

    def __init__(
        self,
        predictor: str = "oracle",
        starvation_s: float = 30.0,
        lazy_discard: bool = True,
        skip_unfit: bool = False,
    ) -> None:
        if starvation_s <= 0:
            raise ValueError(f"starvation_s must be > 0, got {starvation_s}")
        self.discard = KVAction.CACHE if lazy_discard else KVAction.DISCARD
        self.head_of_line_blocking = not skip_unfit  # type: ignore[misc]
        self.predictor_name = predictor
        self.starvation_s = starvation_s
        self._predictor: Predictor | None = None
        self._owned_tokens = 0  # accelerator KV owned by all jobs at the last snapshot
        self._host_free_tokens = 0

    def bind(self, env: PolicyEnv) -> None:
        super().bind(env)
        self._predictor = Predictor(env.service, self.predictor_name)

    @property
    def predictor(self) -> Predictor:
        if self._predictor is None:
            raise RuntimeError("policy 'lamps' is not bound to an engine (call bind())")
        return self._predictor

    # ---- ranking ----------------------------------------------------------------------------
    def memory_time(self, job: Job) -> float:
        """Predicted KV memory-time (token-seconds) of the rest of the job's current call."""
        service, predictor = self.service, self.predictor
        c0 = job.num_context_tokens
        prefill = c0 - job.num_computed_tokens
        n = int(predictor.output.remaining_output(job))
        area = service.prefill_time(prefill, c0 - prefill) * c0
        area += service.decode_time(n, c0) * (c0 + 0.5 * n)
        tool = job.segment.tool
        if tool is None:
            return area
        end = c0 + n
        t_api = predictor.tool_latency(tool.name)
        others = max(0, self._owned_tokens - job.num_computed_tokens)
        action, waste = release_waste(service, end, others, self._host_free_tokens)
        if t_api * end <= waste:
            return area + end * t_api  # preserved through the call
        if action is KVAction.SWAP:
            return area + end * 2.0 * service.swap_time(end)
        return area + end * service.prefill_time(end)  # discarded, recomputed at the return

    def priority(self, job: Job, now: float) -> tuple[int, float]:
        if job.kv_location is KVLocation.DEVICE and job.status == JobStatus.WAITING:
            return (0, job.ready_since)  # resumes in the memory it kept
        waited = now - job.waiting_since if job.status == JobStatus.WAITING else 0.0
        if waited >= self.starvation_s:
            return (1, job.ready_since)
        return (2, self.memory_time(job))

    # ---- learning ---------------------------------------------------------------------------
    def on_segment_end(self, job: Job, now: float) -> None:
        self.predictor.observe_segment_end(job)
        return None

    def on_tool_return(self, job: Job, now: float) -> None:
        tool = job.segment.tool
        if tool is not None:
            self.predictor.observe_tool(tool.name, now - job.tool_started)
        return None

    # ---- KV -------------------------------------------------------------------------------
    def _snapshot(self, kv: KVContext) -> None:
        self._owned_tokens = kv.device_blocks_owned * kv.block_size
        self._host_free_tokens = kv.host_blocks_free * kv.block_size

    def on_tool_call(self, job: Job, kv: KVContext) -> KVAction:
        self._snapshot(kv)
        tool = job.segment.tool
        t_api = self.predictor.tool_latency(tool.name) if tool else 0.0
        return least_waste(self.service, job.num_computed_tokens, kv, t_api, self.discard)

    def review_idle(self, job: Job, kv: KVContext) -> KVAction:
        self._snapshot(kv)
        tool = job.segment.tool
        t_api = self.predictor.tool_latency(tool.name) if tool else 0.0
        left = tool_time_left(job, kv.now, t_api)
        return least_waste(self.service, job.num_computed_tokens, kv, left, self.discard)

    def on_preempt(self, job: Job, kv: KVContext) -> KVAction:
        self._snapshot(kv)
        return KVAction.SWAP  # the mechanism discards instead when the host tier is full


@register
class LampsStrict(Lamps):
    """LAMPS on its engine's terms: hard discard, head-of-line blocking."""

    name = "lamps-strict"

    def __init__(self, predictor: str = "oracle", starvation_s: float = 30.0) -> None:
        super().__init__(predictor, starvation_s, lazy_discard=False, skip_unfit=False)
