"""The physical KV tiers: preallocated device and host tensors, and block copies between them.

The scheduler's ``KVCacheManager`` decides which block ids a job owns on which tier; this
module only holds the bytes and moves them when a plan says so. Allocation, append, free and
discard need no physical work (the pool is preallocated; a freed block is simply overwritten
by its next owner); swap out and swap in become ``index_select``/``index_copy_`` over every
layer at once. Both tiers have the layout of ``attention.py``, split into blocks:
``[layers, 2 * kv_heads, num_blocks, block_size, head_dim]``.
"""

from __future__ import annotations

import contextlib
import math
import mmap
from collections.abc import Sequence

import torch

from astraea.core.kv_cache import BlockCopy, CopyDirection
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

        gpu, cpu = shape(engine.num_gpu_blocks), shape(engine.num_cpu_blocks)
        if torch.device(device).type == "cuda":
            self.device_blocks = torch.zeros(gpu, dtype=dtype, device=device)
            self.host_blocks = torch.zeros(cpu, dtype=dtype, pin_memory=True)
        else:
            self.device_blocks = lazy_zeros(gpu, dtype)
            self.host_blocks = lazy_zeros(cpu, dtype)

    @property
    def device_cache(self) -> torch.Tensor:
        """The device tier by slot, as the model reads it: [layers, 2*kv_heads, slots, dim]."""
        layers, heads, blocks, size, dim = self.device_blocks.shape
        return self.device_blocks.view(layers, heads, blocks * size, dim)

    def apply(self, copies: Sequence[BlockCopy]) -> None:
        """Run a plan's copies (``StepPlan.copies``) before its compute, in their order, the
        order the KV manager issued them: a swap-in may read host blocks a later swap-out
        reuses, a job may be swapped in and out again within one plan. Consecutive copies
        of one direction touch disjoint blocks, so each such run is one gather and one
        scatter."""
        run: list[BlockCopy] = []
        for i, copy in enumerate(copies):
            run.append(copy)
            if i + 1 == len(copies) or copies[i + 1].direction is not copy.direction:
                self._copy(run, copy.direction is CopyDirection.OUT)
                run = []

    def _copy(self, copies: Sequence[BlockCopy], out: bool) -> None:
        src_tier, dst_tier = (
            (self.device_blocks, self.host_blocks)
            if out
            else (self.host_blocks, self.device_blocks)
        )
        src = _ids([b for c in copies for b in c.src], src_tier.device)
        dst = _ids([b for c in copies for b in c.dst], dst_tier.device)
        dst_tier.index_copy_(2, dst, src_tier.index_select(2, src).to(dst_tier.device))

    def copy_blocks(self, src: Sequence[int], dst: Sequence[int]) -> None:
        """Device-to-device block copy (copy-on-write of a shared prefix, for later use)."""
        s = torch.tensor(list(src), dtype=torch.long, device=self.device_blocks.device)
        d = torch.tensor(list(dst), dtype=torch.long, device=self.device_blocks.device)
        self.device_blocks.index_copy_(2, d, self.device_blocks.index_select(2, s))


def lazy_zeros(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A zero tensor in host memory whose pages become resident only once written: an
    anonymous mapping (fresh zero pages) where ``torch.zeros`` writes every byte (the
    default 755 MB fp32 pool was all RSS at start-up). Transparent huge pages are declined:
    one 16-token write touches a 4 KB page in each (layer, head) plane of the pool, and
    with 2 MB pages the first request made 366 MB resident."""
    itemsize = torch.empty(0, dtype=dtype).element_size()
    size = math.prod(shape) * itemsize
    if size == 0:
        return torch.zeros(shape, dtype=dtype)
    buffer = mmap.mmap(-1, size)
    with contextlib.suppress(AttributeError, OSError):  # no madvise, or no THP: fine
        buffer.madvise(mmap.MADV_NOHUGEPAGE)
    return torch.frombuffer(buffer, dtype=dtype).view(shape)


def _ids(blocks: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(blocks, dtype=torch.long, device=device)
