"""The physical KV tiers: preallocated device and host tensors, and block copies between them.

The scheduler's ``KVCacheManager`` decides which block ids a job owns on which tier; this
module only holds the bytes and moves them when a plan says so. Allocation, append, free and
discard need no physical work (the pool is preallocated; a freed block is simply overwritten
by its next owner); swap out and swap in become ``index_select``/``index_copy_`` over every
layer at once. Both tiers have the layout of ``attention.py``, split into blocks:
``[layers, 2 * kv_heads, num_blocks, block_size, head_dim]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from astraea.core.kv_cache import BlockCopy
from astraea.engine.config import EngineConfig, ModelConfig


class KVPool:
    """Device tier (the cache the model reads) and host tier (swapped-out KV)."""

    def __init__(
        self,
        model: ModelConfig,
        engine: EngineConfig,
        dtype: torch.dtype,
        device: str | torch.device = "cpu",
    ) -> None:
        self.block_size = engine.block_size
        self.num_device_blocks = engine.num_gpu_blocks
        self.num_host_blocks = engine.num_cpu_blocks

        def shape(blocks: int) -> tuple[int, ...]:
            heads = 2 * model.num_kv_heads
            return (model.num_layers, heads, blocks, engine.block_size, model.head_dim)

        pin = torch.device(device).type == "cuda"
        self.device_blocks = torch.zeros(shape(engine.num_gpu_blocks), dtype=dtype, device=device)
        self.host_blocks = torch.zeros(shape(engine.num_cpu_blocks), dtype=dtype, pin_memory=pin)

    @property
    def device_cache(self) -> torch.Tensor:
        """The device tier by slot, as the model reads it: [layers, 2*kv_heads, slots, dim]."""
        layers, heads, blocks, size, dim = self.device_blocks.shape
        return self.device_blocks.view(layers, heads, blocks * size, dim)

    def apply(self, swap_out: Sequence[BlockCopy], swap_in: Sequence[BlockCopy]) -> None:
        """Run a plan's copies before its compute.

        The plan holds two lists, not one ordered log, so the order is recovered from the
        data: a job swapped out and back in the same plan reads the host blocks its swap-out
        just wrote; any other swap-in reads its host blocks before the swap-outs run, since
        a swap-out may reuse host blocks that swap-in has just freed."""
        if not swap_out and not swap_in:
            return
        out_jobs = {c.job_id for c in swap_out}
        early = [c for c in swap_in if c.job_id not in out_jobs]
        late = [c for c in swap_in if c.job_id in out_jobs]
        _check_no_in_then_out(swap_out, late)
        staged = self._read(self.host_blocks, early)
        if swap_out:
            src, dst = _ids(swap_out, self.device_blocks.device)
            moved = self.device_blocks.index_select(2, src).to(self.host_blocks.device)
            self.host_blocks.index_copy_(2, dst.to(self.host_blocks.device), moved)
        if late:
            staged = staged + self._read(self.host_blocks, late)
        for data, dst in staged:
            self.device_blocks.index_copy_(2, dst, data.to(self.device_blocks.device))

    def _read(
        self, host: torch.Tensor, copies: Sequence[BlockCopy]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not copies:
            return []
        src, dst = _ids(copies, host.device)
        return [(host.index_select(2, src), dst.to(self.device_blocks.device))]

    def copy_blocks(self, src: Sequence[int], dst: Sequence[int]) -> None:
        """Device-to-device block copy (copy-on-write of a shared prefix, for later use)."""
        s = torch.tensor(list(src), dtype=torch.long, device=self.device_blocks.device)
        d = torch.tensor(list(dst), dtype=torch.long, device=self.device_blocks.device)
        self.device_blocks.index_copy_(2, d, self.device_blocks.index_select(2, s))


def _ids(copies: Sequence[BlockCopy], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    src = [b for c in copies for b in c.src]
    dst = [b for c in copies for b in c.dst]
    return (
        torch.tensor(src, dtype=torch.long, device=device),
        torch.tensor(dst, dtype=torch.long, device=device),
    )


def _check_no_in_then_out(swap_out: Sequence[BlockCopy], late: Sequence[BlockCopy]) -> None:
    """A job swapped in and then out again within one plan would need the opposite order;
    the scheduler does not do that today, so refuse loudly rather than copy stale data."""
    for copy_in in late:
        for copy_out in swap_out:
            if copy_out.job_id == copy_in.job_id and not set(copy_in.src) <= set(copy_out.dst):
                raise NotImplementedError(
                    f"job {copy_in.job_id}: swap-in then swap-out in one plan is not supported"
                )
