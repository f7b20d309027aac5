"""``astraea``: the state-aware hierarchical scheduler and adaptive KV manager of the Astraea
paper (arXiv 2512.14142, sec. 4; restated in shared/ASTRAEA.md sec. 2).

Ordering. ``num_queues`` strict-priority queues moved by token cost, not time slices. A job
enters Q0. When one of its calls ends, the call's cost is compared with its queue's quota
``base_quantum * quantum_growth**level``: above it, the job is compute-intensive and moves one
queue down; a call that yields to a tool within its quota marks the job I/O-intensive and
moves it one queue up. The cost counts the call's compute in decode-token units
(``call_cost="service"``; the paper leaves open what it counts): new input + output tokens
(``"tokens"``) demoted every long first prompt, and on the ToolBench mix (400 jobs, 7B, 2
jobs/s) that doubled avg JCT (213 s against 101 s). Within a queue, enhanced HRRN: highest
``(W + T) / T`` first, with ``W`` the job's time in the engine over its whole life, queued or
computing (its age less its tool time; ``hrrn_wait="queued"`` counts only its queued time, the
paper's reading, which spreads waits evenly and so lost to job-FCFS InferCept by up to 7% on
ToolBench at 70B), and ``T`` the predicted compute time of its current call, weighed by the
KV memory the call must claim over the mean claim (``hrrn_size="memory"``,
``policies.mlfq.ClaimScale``): memory is what runs out past the knee, and a context kept
through its tool wait claims little, so its job resumes soon and frees it. A job in the lowest
queue whose ratio exceeds ``aging_ratio`` is served as if in Q0. Admission packs the batch in
that order while memory fits, skipping what does not fit; running calls are preempted only when
memory runs out. Quotas at the quantiles of observed costs (``quotas="adaptive"``) fill every
queue, and measured worse (docs/results.md, "astraea's queues"); so did Q0's quota at 512: the
default (4,096 decode tokens of compute) demotes only heavy calls and leaves the rest to HRRN.

KV during tool calls. Below ``watermark`` (fraction of accelerator KV blocks owned) a job
keeps (preserves) its KV; so it does above the watermark while no call is waiting for
memory (keeping costs nothing then, and a swap stalls the batch). Under real pressure, the
least wasted memory-time of InferCept's model wins (``policies.common``: preserve
``T_api*C_self``, discard ``T_recompute(C_self)*(C_self+C_batch)``, swap
``2*T_swap(C_self)*C_batch``). Discard is lazy: blocks become evictable prefix cache, so a
context survives if nobody needs its memory. Preserved contexts of idle jobs are reviewed
each step against the same rule with the tool's remaining predicted time; a swapped
context is brought back when its tool is predicted to return.

With copy engines beside compute (``ServiceTimeModel.swap_stalls_batch`` False) the host
tier is an extension of device memory: once memory fills (above the watermark, or a call
left out for memory) the least-waste rule weighs preserve against swap (a swap then costs
only the context's own blocks while they travel); while it is idle contexts stay (a swap-in
would only delay the job's return); contexts come back when their call is admitted (no
prefetch), and admission stops at the first call that does not fit; measured in
benchmarks/limit_gap.py (docs/results.md, section 0).

Open parameters of the paper (queue count, quotas, aging threshold, watermark) are fields of
``AstraeaConfig`` with the defaults below; docs/results.md sweeps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from astraea.core.job import Job, JobStatus
from astraea.core.policy import KVAction, KVContext, Policy, PolicyEnv, tool_time_left
from astraea.policies.common import host_room, other_tokens, release_waste
from astraea.policies.mlfq import ClaimScale, Quotas, call_cost
from astraea.policies.ratio_order import RatioOrder
from astraea.policies.registry import register
from astraea.predict.predictor import Predictor


@dataclass(frozen=True, slots=True)
class AstraeaConfig:
    num_queues: int = 4  # m
    # Token-cost quota of Q0. With the service cost, a call costing more than 4,096 decode
    # tokens of compute demotes its job; at 512 demotions cost JCT on every mix measured and
    # helped on none (benchmarks/astraea_queues.py: tuning mixes, two seeds, geomean 0.985 ->
    # 0.976x the best peer; held-out coding 1.23 -> 1.00x at its top rate), since HRRN
    # already orders by the predicted size. Heavier calls (long generations) still demote.
    base_quantum: int = 4096
    quantum_growth: float = 2.0  # quota of Q_k = base_quantum * growth**k
    aging_ratio: float = 8.0  # response ratio that lifts a lowest-queue job to Q0
    watermark: float = 0.9  # KV use below which every tool-waiting job preserves
    predictor: str = "oracle"  # output length: "oracle" (paper) or "history" (deployable)
    use_mlfq: bool = True  # ablation: one queue
    use_hrrn: bool = True  # ablation: FCFS by call arrival within a queue
    adaptive_kv: bool = True  # ablation: vLLM's LRU cache for every tool call
    prefetch_margin: float = 0.05  # s before the predicted tool return to have KV back
    use_swap: bool = True  # ablation: release memory through the evictable cache only
    # A lazy discard often costs nothing (the blocks survive if nobody needs them) while a
    # swap always stalls the batch, so a swap must beat the full discard cost by this factor.
    swap_margin: float = 0.5
    # What a call's token cost counts (the paper leaves it open): "service", its compute time
    # in decode-token units (a prefill token costs what it takes, ~1/50 of a decode token on
    # an A100); "tokens", new input + output tokens, which demotes every long first prompt.
    call_cost: str = "service"
    # Quotas: "fixed" (``base_quantum * quantum_growth**level``) or "adaptive" (the
    # quantiles (k+1)/m of the call costs seen so far, so that every queue is used).
    quotas: str = "fixed"
    # HRRN's service time T: "memory" weighs the call's compute time by the KV it must claim
    # (its context not resident on the device, plus its output) over the mean claim; "time"
    # is the paper's plain compute time.
    hrrn_size: str = "memory"
    # HRRN's W: "engine", the job's time in the engine over its life, queued or computing
    # (its age less its tool time), so a job that has run longer, nearer its end, resumes
    # sooner; "queued", only the time its calls waited in the queue (the paper's reading).
    # Tuning mixes on all four profiles, 4 seeds, 172 points (docs/results.md): 3 points
    # above 1.02x the best peer against 7, worst 1.045x against 1.068x, same geomean.
    hrrn_wait: str = "engine"

    def __post_init__(self) -> None:
        if self.num_queues < 1 or self.base_quantum < 1 or self.quantum_growth < 1:
            raise ValueError("need num_queues >= 1, base_quantum >= 1, quantum_growth >= 1")
        if not 0.0 <= self.watermark <= 1.0:
            raise ValueError(f"watermark must be in [0, 1], got {self.watermark}")
        for name, value, allowed in (
            ("call_cost", self.call_cost, ("service", "tokens")),
            ("quotas", self.quotas, ("fixed", "adaptive")),
            ("hrrn_size", self.hrrn_size, ("memory", "time")),
            ("hrrn_wait", self.hrrn_wait, ("queued", "engine")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if self.aging_ratio <= 1.0:
            raise ValueError(f"aging_ratio must be > 1, got {self.aging_ratio}")


@register
class Astraea(Policy):
    name = "astraea"
    static_priority = False
    head_of_line_blocking = False  # True with copy engines (bind)
    reviews_idle = True
    prefetches = True

    def __init__(self, **params: object) -> None:
        self.config = AstraeaConfig(**params)  # type: ignore[arg-type]
        self._predictor: Predictor | None = None
        self._keys: dict[str, tuple] = {}  # job_id -> cached parts of its priority
        cfg = self.config
        self._quotas = Quotas(
            cfg.base_quantum, cfg.quantum_growth, cfg.num_queues, cfg.quotas == "adaptive"
        )
        self._claims = ClaimScale()

    def bind(self, env: PolicyEnv) -> None:
        self._predictor = Predictor(env.service, self.config.predictor)
        # With copy engines (see _swap_is_free) admission stops at the first call that does
        # not fit: skipping packs small calls into the gaps, and the larger running calls
        # are then preempted as they grow (1,000 InferCept jobs on llama2-7b-a100 at 4 jobs/s:
        # avg JCT 149 s skipping, 106 s not).
        self.head_of_line_blocking = self._swap_is_free()  # type: ignore[misc]

    @property
    def predictor(self) -> Predictor:
        if self._predictor is None:
            raise RuntimeError("policy 'astraea' is not bound to an engine (call bind())")
        return self._predictor

    # ---- ordering ------------------------------------------------------------------------
    def priority(self, job: Job, now: float) -> tuple[int, float]:
        return self.priorities((job,), now)[0]

    def priorities(self, jobs: Sequence[Job], now: float) -> list[tuple[int, float]]:
        # ratio = (W + T) / T = 1 + W / T, with W = now + w0 while W grows with the clock
        # (``clocked``; w0 fixed per stretch) and T = t * claim / mean claim: all but ``now``
        # and the mean are cached per job revision (the queue re-keys thousands each step).
        cfg, cache, refresh = self.config, self._keys, self._key_parts
        lowest, aging, hrrn = cfg.num_queues - 1, cfg.aging_ratio, cfg.use_hrrn
        mean = self._claims.mean if cfg.hrrn_size == "memory" else None
        keys = []
        for job in jobs:
            cached = cache.get(job.job_id)
            if cached is None or cached[0] != job.revision:
                cached = refresh(job)
            _, w0, size, claim, level, clocked = cached
            ratio = 1.0 + ((now if clocked else 0.0) + w0) * (mean or claim) / size
            if level == lowest and ratio > aging:
                level = 0
            keys.append((level, -ratio if hrrn else job.ready_since))
        return keys

    def waiting_order(self) -> RatioOrder | None:
        cfg = self.config
        if not cfg.use_hrrn:
            return None  # FIFO within a level: the queue's sort is cheap enough
        memory = cfg.hrrn_size == "memory"
        return RatioOrder(
            self._key_parts,
            lambda: self._claims.mean if memory else None,
            cfg.num_queues - 1,
            cfg.aging_ratio,
        )

    def _key_parts(self, job: Job) -> tuple:
        """(revision, w0, t * claim, claim, level, clocked): what a key needs besides the
        clock and the mean claim; W is ``now + w0`` if ``clocked``, else ``w0``. With
        ``hrrn_size="time"`` the claim is 1 and so is the mean, which leaves the paper's T."""
        cfg = self.config
        service = max(self.predictor.segment_time(job), 1e-6)
        claim = 1.0
        if cfg.hrrn_size == "memory":
            claim = self._claims.claim(job, self.predictor.output.remaining_output(job))
        if cfg.hrrn_wait == "engine":  # now - arrival - tool time, queued or computing
            clocked = job.status != JobStatus.TOOL_WAIT
            w0 = -(job.arrival + job.total_tool_time)
        else:  # queued time: the clock counts only while the job waits
            clocked = job.status == JobStatus.WAITING
            w0 = job.total_waiting_time - (job.waiting_since if clocked else 0.0)
        level = int(job.policy_state.get("level", 0)) if cfg.use_mlfq else 0
        parts = (job.revision, w0, service * claim, claim, level, clocked)
        self._keys[job.job_id] = parts
        return parts

    def on_arrival(self, job: Job, now: float) -> dict[str, float]:
        return {"level": 0}

    def on_job_end(self, job: Job) -> None:
        self._keys.pop(job.job_id, None)
        self.predictor.forget(job)

    def on_segment_end(self, job: Job, now: float) -> dict[str, float] | None:
        self.predictor.observe_segment_end(job)
        self._keys.pop(job.job_id, None)
        cfg = self.config
        self._claims.observe(job)
        if not cfg.use_mlfq:
            return None
        level = int(job.policy_state.get("level", 0))
        cost = call_cost(self.predictor.service, job, cfg.call_cost)
        self._quotas.observe(cost)
        if cost > self._quotas.quota(level):
            return {"level": min(level + 1, cfg.num_queues - 1), "compute_intensive": 1}
        if job.segment.tool is not None:
            return {"level": max(level - 1, 0), "compute_intensive": 0}
        return None

    def on_tool_return(self, job: Job, now: float) -> None:
        tool = job.segment.tool
        if tool is not None:
            self.predictor.observe_tool(tool.name, now - job.tool_started)

    # ---- KV during tool calls ------------------------------------------------------------------
    def on_tool_call(self, job: Job, kv: KVContext) -> KVAction:
        if not self.config.adaptive_kv:
            return KVAction.CACHE
        return self.review_idle(job, kv)

    def keeps_every_idle_context(self, kv: KVContext) -> bool:
        return self._memory_idle(kv)

    def review_idle(self, job: Job, kv: KVContext) -> KVAction:
        if self._memory_idle(kv):
            return KVAction.PRESERVE
        return self._least_waste(job, kv, self._tool_time_left(job, kv.now))

    def prefetch(self, job: Job, kv: KVContext) -> bool:
        if self._swap_is_free():
            # A swap-in at admission takes tens of ms beside compute; bringing contexts back
            # early took memory from running calls (same run: 3.5 jobs/s 95 s -> 90.5 s).
            return False
        left = self._tool_time_left(job, kv.now)
        swap_in = self.predictor.service.swap_time(job.kv_high_water)
        return left <= swap_in + self.config.prefetch_margin

    def on_preempt(self, job: Job, kv: KVContext) -> KVAction:
        if not self.config.adaptive_kv:
            return KVAction.CACHE
        return self._release(job, kv)[0]

    def _memory_idle(self, kv: KVContext) -> bool:
        """Keeping KV costs nothing: below the watermark, or nothing was left out for memory.
        With copy engines, below the watermark *and* nothing left out: a swap then stalls no
        one, so contexts go out as soon as memory fills (1,000 InferCept jobs on 7B at 3.5 / 4
        / 5 jobs/s: avg JCT 86.1 / 104.8 / 121.5 s against 99.5 / 115.7 / 121.5 with "or";
        continuum at light load keeps vllm-fcfs's 38.1 s, where least waste at every tool
        call swapped 70k-token contexts and their returns waited for them: 39.8 s)."""
        below = kv.device_usage < self.config.watermark
        if self._swap_is_free():
            return below and not kv.memory_bound
        return below or not kv.memory_bound

    def _swap_is_free(self) -> bool:
        """Copies run beside compute: the host tier extends device memory at the link's rate,
        so contexts go out as soon as memory fills (``_memory_idle``) and come back when
        their call is admitted."""
        return self.config.use_swap and not self.predictor.service.swap_stalls_batch

    def _tool_time_left(self, job: Job, now: float) -> float:
        tool = job.segment.tool
        return tool_time_left(job, now, self.predictor.tool_latency(tool.name) if tool else 0.0)

    def _release(self, job: Job, kv: KVContext) -> tuple[KVAction, float]:
        """Swap or lazy discard, whichever wastes less (a swap must win by ``swap_margin``)."""
        own, cfg = job.num_computed_tokens, self.config
        return release_waste(
            self.predictor.service,
            own,
            other_tokens(own, kv),
            host_room(kv, cfg.use_swap),
            KVAction.CACHE,
            cfg.swap_margin,
        )

    def _least_waste(self, job: Job, kv: KVContext, tool_time: float) -> KVAction:
        action, waste = self._release(job, kv)
        return KVAction.PRESERVE if tool_time * job.num_computed_tokens <= waste else action
