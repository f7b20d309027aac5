"""Service-time model: how long a segment computes, from the engine's cost profile.

``T_comp = f_prefill(n_in) + n_gen * d`` (Astraea paper, sec. 4): ``f_prefill`` is the
profiled prefill curve, ``d`` the average decode latency per token. Both come from the
active cost profile (the simulator's, or one fitted to the real engine), so one model
serves every executor. Closed forms only: policies call this per waiting job per step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceTimeModel:
    step_overhead: float  # a: fixed cost of an engine step (s)
    prefill_per_token: float  # b (s/token)
    decode_per_token: float  # d: one decode step for one sequence at small batch (s)
    kv_read_per_token: float  # e: attention cost per KV token read (s/token)
    swap_per_token: float  # device<->host copy, one way (s/token)
    chunk_tokens: int = 8192  # prefill chunk size (token budget per step)
    # False when copies run on copy engines beside compute (``overlap_copies``): a swap then
    # costs the batch nothing; only the copied context's own blocks are busy meanwhile.
    swap_stalls_batch: bool = True

    @classmethod
    def from_profile(cls, profile: object, chunk_tokens: int = 8192) -> ServiceTimeModel:
        """Build from a ``CostProfile`` (duck-typed so the core needs no simulator import)."""
        a, b, c, e = (float(getattr(profile, k)) for k in ("a", "b", "c", "e"))
        swap = profile.swap_time(1)  # type: ignore[attr-defined]
        return cls(a, b, a + c, e, swap, chunk_tokens)

    def prefill_time(self, num_tokens: int, context_before: int = 0) -> float:
        """Time to compute ``num_tokens`` prompt tokens after ``context_before`` cached ones."""
        if num_tokens <= 0:
            return 0.0
        chunks = -(-num_tokens // self.chunk_tokens)
        return (
            chunks * self.step_overhead
            + self.prefill_per_token * num_tokens
            + self.kv_read_per_token * (context_before + num_tokens)
        )

    def decode_time(self, num_tokens: int, context: int = 0) -> float:
        """Time to generate ``num_tokens`` one step at a time from a ``context``-token KV."""
        if num_tokens <= 0:
            return 0.0
        kv = context * num_tokens + num_tokens * (num_tokens - 1) / 2
        return num_tokens * self.decode_per_token + self.kv_read_per_token * kv

    def segment_time(self, prefill_tokens: int, output_tokens: float, context_before: int) -> float:
        """Compute time of one call: prefill its uncomputed tokens, then decode."""
        return self.prefill_time(prefill_tokens, context_before) + self.decode_time(
            int(output_tokens), context_before + prefill_tokens
        )

    def swap_time(self, num_tokens: int) -> float:
        return self.swap_per_token * num_tokens
