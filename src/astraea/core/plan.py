"""The two boundary objects of a step: the plan (scheduler -> executor) and the result back.

An executor (the simulator's cost model, the torch engine, vLLM) needs nothing else from the
scheduler: which sequences compute how many tokens at which position over which blocks, and
which KV blocks move between tiers before the compute starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from astraea.core.kv_cache import BlockCopy


class ScheduledSeq(NamedTuple):
    """One job's share of the step: compute ``num_new_tokens`` tokens from position
    ``num_computed_before`` (a prefill chunk, a recompute, or one decode token).
    A named tuple because the simulator builds hundreds of thousands of them."""

    job_id: str
    num_computed_before: int
    num_new_tokens: int
    samples: bool  # the step completes the context, so it samples the next token
    block_table: list[int]  # live view of the job's device blocks; valid until update()

    @property
    def kv_len(self) -> int:
        return self.num_computed_before + self.num_new_tokens

    @property
    def is_decode(self) -> bool:
        return self.num_new_tokens == 1 and self.samples


@dataclass(slots=True)
class StepPlan:
    """What to run next. With ``num_steps > 1`` the plan is a pure-decode batch the executor
    may repeat up to that many times (each sequence gains one token per step) while no
    outside event happens; it reports how many steps it actually ran."""

    seqs: list[ScheduledSeq] = field(default_factory=list)
    swap_out: list[BlockCopy] = field(default_factory=list)  # run before swap_in and compute
    swap_in: list[BlockCopy] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)
    num_steps: int = 1
    num_prefill_tokens: int = 0
    num_decode_seqs: int = 0
    sum_kv_tokens: int = 0  # over all sequences, of the KV length after the (first) step

    @property
    def is_empty(self) -> bool:
        return not self.seqs and not self.swap_out and not self.swap_in

    @property
    def num_swapped_tokens(self) -> int:
        return sum(c.num_tokens for c in self.swap_out) + sum(c.num_tokens for c in self.swap_in)

    @property
    def num_swapped_blocks(self) -> int:
        return sum(len(c.src) for c in self.swap_out) + sum(len(c.src) for c in self.swap_in)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What the executor did: how long it took and how many of the plan's steps it ran.

    ``stopped`` names jobs whose segment ended early by the executor's own decision (an
    EOS token or a stop string in the engine); the simulator never stops early."""

    elapsed: float
    num_steps: int = 1
    stopped: frozenset[str] = frozenset()
    sampled: dict[str, list[int]] | None = None  # token ids, engine only
