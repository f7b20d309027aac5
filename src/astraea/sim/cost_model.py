"""The cost model of one engine iteration, and the KV memory arithmetic profiles share.

One iteration takes ``t = a + b*prefill_tokens + c*decode_seqs + e*sum_kv_tokens`` seconds
(``CostProfile``); KV bytes per token and the KV capacity left after weights follow vLLM's
accounting. The built-in profiles are derived in ``astraea.sim.profiles``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

GIB = 1 << 30
DEFAULT_PROFILE = "llama2-7b-a100"


@dataclass(frozen=True, slots=True)
class CostProfile:
    """Linear iteration-time model plus KV memory sizes for one serving engine."""

    name: str
    model: str
    accelerator: str
    tensor_parallel: int
    a: float  # s per iteration
    b: float  # s per prefill token
    c: float  # s per decoding sequence
    e: float  # s per KV token attended (summed over the batch)
    kv_bytes_per_token: int
    kv_capacity_tokens: int
    host_kv_capacity_tokens: int
    host_link_bytes_per_s: float
    source: str

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(f.name, getattr(self, f.name))

    def iteration_time(self, prefill_tokens: int, decode_seqs: int, sum_kv_tokens: int) -> float:
        """Seconds for one engine step with the given batch features."""
        if prefill_tokens < 0 or decode_seqs < 0 or sum_kv_tokens < 0:
            raise ValueError(
                "iteration_time arguments must be >= 0, got "
                f"({prefill_tokens}, {decode_seqs}, {sum_kv_tokens})"
            )
        return self.a + self.b * prefill_tokens + self.c * decode_seqs + self.e * sum_kv_tokens

    def swap_time(self, num_tokens: int) -> float:
        """Seconds to copy ``num_tokens`` of KV one way between accelerator and host."""
        if num_tokens < 0:
            raise ValueError(f"num_tokens must be >= 0, got {num_tokens}")
        return num_tokens * self.kv_bytes_per_token / self.host_link_bytes_per_s

    def prefill_time(
        self, num_tokens: int, context_before: int = 0, chunk: int | None = None
    ) -> float:
        """Seconds to compute ``num_tokens`` prompt tokens alone, ``chunk`` tokens per step.

        ``context_before`` tokens are already cached; each chunk attends to everything
        before it plus itself. This is also the cost of recomputing a discarded KV cache.
        """
        if num_tokens < 0 or context_before < 0:
            raise ValueError(
                f"num_tokens and context_before must be >= 0, got {num_tokens}, {context_before}"
            )
        if chunk is not None and chunk <= 0:
            raise ValueError(f"chunk must be a positive token count or None, got {chunk}")
        step = num_tokens if chunk is None else chunk
        total, done = 0.0, 0
        while done < num_tokens:
            n = min(step, num_tokens - done)
            done += n
            total += self.iteration_time(n, 0, context_before + done)
        return total

    def decode_time_per_token(self, batch: int = 1, kv_tokens: int = 0) -> float:
        """Seconds of one decode step for ``batch`` sequences each attending to ``kv_tokens``."""
        if batch < 1 or kv_tokens < 0:
            raise ValueError(f"need batch >= 1 and kv_tokens >= 0, got {batch}, {kv_tokens}")
        return self.iteration_time(0, batch, batch * kv_tokens)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; ``from_dict`` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CostProfile:
        """Build a profile from a dict, with a clear ValueError for missing/unknown/bad fields."""
        if not isinstance(d, dict):
            raise ValueError(f"a cost profile must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in d]
        unknown = sorted(set(d) - set(names))
        if missing or unknown:
            raise ValueError(f"bad cost profile fields: missing {missing}, unknown {unknown}")
        return cls(**{n: d[n] for n in names})


_STR_FIELDS = frozenset({"name", "model", "accelerator", "source"})
_INT_FIELDS = frozenset(
    {"tensor_parallel", "kv_bytes_per_token", "kv_capacity_tokens", "host_kv_capacity_tokens"}
)
_ZERO_OK = frozenset({"c", "e", "host_kv_capacity_tokens"})


def _check_field(name: str, value: Any) -> None:
    if name in _STR_FIELDS:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"profile field {name!r} must be a non-empty string, got {value!r}")
        return
    want_int = name in _INT_FIELDS
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = is_int if want_int else (is_int or isinstance(value, float)) and math.isfinite(value)
    zero_ok = name in _ZERO_OK
    if not ok or value < 0 or (value == 0 and not zero_ok):
        kind = "an integer" if want_int else "a finite number"
        bound = ">= 0" if zero_ok else "> 0"
        raise ValueError(f"profile field {name!r} must be {kind} {bound}, got {value!r}")


def kv_bytes_per_token(
    num_layers: int, num_kv_heads: int, head_dim: int, dtype_bytes: int = 2
) -> int:
    """Bytes of K and V for one token across all layers (and all TP ranks together)."""
    if min(num_layers, num_kv_heads, head_dim, dtype_bytes) <= 0:
        raise ValueError(
            f"sizes must be > 0, got num_layers={num_layers}, num_kv_heads={num_kv_heads}, "
            f"head_dim={head_dim}, dtype_bytes={dtype_bytes}"
        )
    return 2 * num_layers * num_kv_heads * head_dim * dtype_bytes


def kv_capacity_tokens(
    memory_bytes: int,
    weight_bytes: int,
    kv_bytes_per_token: int,
    memory_utilization: float = 0.9,
    activation_reserve_bytes: int = 2 * GIB,
) -> int:
    """KV tokens that fit in ``memory_bytes * memory_utilization`` after weights and activations.

    Pass totals over all TP ranks (memory, weights and reserve each times TP).
    """
    if not 0.0 < memory_utilization <= 1.0:
        raise ValueError(f"memory_utilization must be in (0, 1], got {memory_utilization}")
    if kv_bytes_per_token <= 0:
        raise ValueError(f"kv_bytes_per_token must be > 0, got {kv_bytes_per_token}")
    free = memory_bytes * memory_utilization - weight_bytes - activation_reserve_bytes
    if free <= 0:
        raise ValueError(
            f"model does not fit: {memory_bytes} B x {memory_utilization} leaves no room after "
            f"{weight_bytes} B of weights and {activation_reserve_bytes} B of activations"
        )
    return int(free // kv_bytes_per_token)
