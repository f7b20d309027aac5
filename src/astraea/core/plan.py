"""The two boundary objects of a step: the plan (scheduler -> executor) and the result back.

An executor (the simulator's cost model, the torch engine, vLLM) needs nothing else from the
scheduler: which sequences compute how many tokens at which position over which blocks, and
which KV blocks move between tiers, in which order, before the compute starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from astraea.core.kv_cache import BlockCopy, CopyDirection

if TYPE_CHECKING:
    from astraea.core.job import Job


class ScheduledSeq(NamedTuple):
    """One job's share of the step: compute ``num_new_tokens`` tokens from position
    ``num_computed_before`` (a prefill chunk, a recompute, or one decode token).
    A named tuple because the simulator builds hundreds of thousands of them."""

    job_id: str
    num_computed_before: int
    num_new_tokens: int
    samples: bool  # the step completes the context, so it samples the next token
    block_table: tuple[int, ...]  # the job's device blocks, enough for every step of the plan

    @property
    def kv_len(self) -> int:
        return self.num_computed_before + self.num_new_tokens


@dataclass(slots=True)
class StepPlan:
    """What to run next: KV copies between tiers, then the compute.

    ``copies`` run one after the other in list order (the order the KV manager issued them:
    a plan may swap a job in and out again, or reuse host blocks another copy just freed),
    all before the compute. With ``num_steps > 1`` the plan is a pure-decode batch the
    executor may repeat up to that many times (each sequence gains one token per step) while
    no outside event happens; it reports how many steps it actually ran."""

    seqs: list[ScheduledSeq] = field(default_factory=list)
    copies: list[BlockCopy] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)
    num_steps: int = 1
    num_prefill_tokens: int = 0
    num_decode_seqs: int = 0
    sum_kv_tokens: int = 0  # over all sequences, of the KV length after the (first) step

    @property
    def is_empty(self) -> bool:
        return not self.seqs and not self.copies

    def add_seq(self, job: Job, n: int, block_table: tuple[int, ...]) -> None:
        """Schedule ``n`` of the job's tokens from what it has computed."""
        before = job.num_computed_tokens
        end = before + n
        samples = end == job.num_context_tokens
        self.seqs.append(ScheduledSeq(job.job_id, before, n, samples, block_table))
        if n == 1 and samples:
            self.num_decode_seqs += 1
        else:
            self.num_prefill_tokens += n
        self.sum_kv_tokens += end

    @property
    def swap_out(self) -> list[BlockCopy]:
        """The device -> host copies, in order."""
        return [c for c in self.copies if c.direction is CopyDirection.OUT]

    @property
    def swap_in(self) -> list[BlockCopy]:
        """The host -> device copies, in order."""
        return [c for c in self.copies if c.direction is CopyDirection.IN]

    @property
    def num_swapped_blocks(self) -> int:
        return sum(len(c.src) for c in self.copies)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What the executor did: how long it took and how many of the plan's steps it ran.

    ``stopped`` names jobs whose segment ended early by the executor's own decision (an
    EOS token or a stop string in the engine); the simulator never stops early. With
    ``overlap_copies`` the executor names the copies that finished (``BlockCopy.order``)."""

    elapsed: float
    num_steps: int = 1
    stopped: frozenset[str] = frozenset()
    copies_done: tuple[int, ...] = ()  # orders of copies finished by now (overlap_copies)
