"""From a scheduler's ``StepPlan`` to the tensors of one forward pass.

The flattened batch holds, for each scheduled sequence, the tokens at positions
``[num_computed_before, num_computed_before + num_new_tokens)`` of that job's token list;
single-token sequences first (they share one attention call), then the multi-token chunks in
plan order. Slots come from the plan's block tables: token at position ``p`` of a job lives in
slot ``table[p // block_size] * block_size + p % block_size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from astraea.core.plan import ScheduledSeq
from astraea.engine.attention import CAUSAL_BLOCK, AttentionMeta, DecodeGroup, PrefillChunk


@dataclass
class StepBatch:
    """One forward pass's inputs, and which job each logits row belongs to."""

    input_ids: torch.Tensor
    positions: torch.Tensor
    meta: AttentionMeta
    sample_rows: torch.Tensor
    sample_jobs: list[str]

    @property
    def num_rows(self) -> int:
        return int(self.input_ids.shape[0])


def build_batch(
    seqs: Sequence[ScheduledSeq],
    token_ids: Mapping[str, Sequence[int]],
    block_size: int,
    step: int = 0,
    device: str | torch.device = "cpu",
) -> StepBatch:
    """Tensors for ``seqs``; ``step`` > 0 is a later step of a multi-step decode plan, where
    each sequence is ``step`` tokens further along than the plan says."""
    if any(s.num_new_tokens < 1 for s in seqs):
        raise ValueError("a scheduled sequence must compute at least one token")
    # Longest context first, so that decode groups of similar length are runs of rows.
    singles = sorted(
        (s for s in seqs if s.num_new_tokens == 1), key=lambda s: -s.num_computed_before
    )
    chunks = [s for s in seqs if s.num_new_tokens > 1]
    if step and chunks:
        raise ValueError("only a pure-decode plan can run more than one step")
    ids: list[int] = []
    positions: list[int] = []
    slots: list[int] = []
    sample_rows: list[int] = []
    sample_jobs: list[str] = []
    tables: list[Sequence[int]] = []
    lengths: list[int] = []
    for s in singles:
        pos = s.num_computed_before + step
        table = _checked_table(s, pos + 1, block_size)
        if s.samples:
            sample_rows.append(len(ids))
            sample_jobs.append(s.job_id)
        ids.append(_tokens(token_ids, s.job_id, pos, 1)[0])
        positions.append(pos)
        slots.append(table[pos // block_size] * block_size + pos % block_size)
        tables.append(table)
        lengths.append(pos + 1)
    prefills: list[PrefillChunk] = []
    for s in chunks:
        before, n = s.num_computed_before, s.num_new_tokens
        table = _checked_table(s, before + n, block_size)
        chunk_slots = _slots(table, before + n, block_size)
        start = len(ids)
        ids.extend(_tokens(token_ids, s.job_id, before, n))
        positions.extend(range(before, before + n))
        slots.extend(chunk_slots[before:].tolist())
        prefills.append(_chunk(start, before, n, chunk_slots, device))
        if s.samples:
            sample_rows.append(start + n - 1)
            sample_jobs.append(s.job_id)
    meta = AttentionMeta(slot_mapping=_long(slots, device), prefills=prefills)
    if singles:
        _decode_group(meta, tables, lengths, block_size, device)
    return StepBatch(
        input_ids=_long(ids, device),
        positions=_long(positions, device),
        meta=meta,
        sample_rows=_long(sample_rows, device),
        sample_jobs=sample_jobs,
    )


def _long(values: Sequence[int], device: str | torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long).to(device)


def _tokens(token_ids: Mapping[str, Sequence[int]], job_id: str, start: int, n: int) -> list[int]:
    tokens = token_ids.get(job_id)
    if tokens is None:
        raise KeyError(f"no token list for job {job_id}")
    if len(tokens) < start + n:
        raise ValueError(
            f"job {job_id}: positions up to {start + n} scheduled, {len(tokens)} tokens known"
        )
    return list(tokens[start : start + n])


def _checked_table(s: ScheduledSeq, kv_len: int, block_size: int) -> Sequence[int]:
    if len(s.block_table) * block_size < kv_len:
        raise ValueError(f"job {s.job_id}: {len(s.block_table)} blocks cannot hold {kv_len} tokens")
    return s.block_table


def _slots(table: Sequence[int], kv_len: int, block_size: int) -> torch.Tensor:
    """Slots of positions [0, kv_len) of one sequence."""
    blocks = torch.tensor(table[: -(-kv_len // block_size)], dtype=torch.long)
    return (blocks[:, None] * block_size + torch.arange(block_size)).flatten()[:kv_len]


def _chunk(
    start: int, before: int, n: int, slots: torch.Tensor, device: str | torch.device
) -> PrefillChunk:
    if before == 0:  # a prompt's first chunk: attends to itself, no cache read needed
        if n <= CAUSAL_BLOCK:
            return PrefillChunk(start, n)
        tril = torch.ones(n, n, dtype=torch.bool).tril_()
        return PrefillChunk(start, n, mask=tril.to(device))
    kv_len = before + n
    mask = torch.arange(kv_len)[None, :] <= torch.arange(before, kv_len)[:, None]
    return PrefillChunk(start, n, slots.to(device), mask.to(device))


def group_lengths(lengths: Sequence[int], block_size: int, max_groups: int = 4) -> list[int]:
    """Sizes of consecutive groups over ``lengths`` (longest first): a sequence joins the
    current group while the group's padded blocks stay within 1.25x its real blocks, at
    most ``max_groups`` groups (each costs one more gather and SDPA call per layer)."""
    sizes: list[int] = []
    span = real = 0
    for length in lengths:
        blocks = -(-length // block_size)
        if sizes and (len(sizes) == max_groups or (sizes[-1] + 1) * span <= 1.25 * (real + blocks)):
            sizes[-1] += 1
            real += blocks
        else:
            sizes.append(1)
            span = real = blocks
    return sizes


def _decode_group(
    meta: AttentionMeta,
    tables: list[Sequence[int]],
    lengths: list[int],
    block_size: int,
    device: str | torch.device,
) -> None:
    """Gathers for the single-token queries (rows longest first): per group, contexts padded
    to the group's longest (in whole blocks, padding pointing at block 0) and masked."""
    meta.num_decode = len(tables)
    widest = max(len(t) for t in tables)
    meta.decode_tables = torch.tensor(
        [list(t) + [0] * (widest - len(t)) for t in tables], dtype=torch.int32
    ).to(device)
    meta.decode_lengths = torch.tensor(lengths, dtype=torch.int32).to(device)
    meta.block_size = block_size
    start = 0
    for size in group_lengths(lengths, block_size):
        rows = range(start, start + size)
        num_blocks = -(-lengths[start] // block_size)
        padded = [list(tables[i][:num_blocks]) for i in rows]
        padded = [t + [0] * (num_blocks - len(t)) for t in padded]
        blocks = torch.tensor(padded, dtype=torch.long)
        span = num_blocks * block_size
        slots = (blocks[:, :, None] * block_size + torch.arange(block_size)).view(size, span)
        real = torch.tensor([lengths[i] for i in rows])
        mask = None
        if int(real.min()) < span:
            mask = (torch.arange(span)[None, :] < real[:, None]).view(size, 1, 1, span).to(device)
        meta.decode_groups.append(DecodeGroup(start, size, span, slots.flatten().to(device), mask))
        start += size
