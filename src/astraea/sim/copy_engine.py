"""The simulated copy engines: KV moves between tiers beside compute, at the host link's rate.

GPUs copy between device and host memory with DMA copy engines on their own CUDA streams,
concurrently with kernels; PCIe is full duplex, so a swap-out and a swap-in proceed at the
same time, each at the link's one-way bandwidth (NVIDIA exposes separate engines per
direction; vLLM's KV offloading connector, LMCache and InferCept all overlap copies with
compute). So there is one first-in-first-out queue per direction: a copy starts when its
queue is free and the step that issued it begins, and takes ``swap_time`` of its tokens. A
swap-out of a job whose swap-in is still on its way waits for that swap-in to land.
"""

from __future__ import annotations

import heapq
import math

from astraea.core.kv_cache import BlockCopy, CopyDirection
from astraea.sim.cost_model import CostProfile


class CopyEngines:
    def __init__(self, profile: CostProfile, block_size: int) -> None:
        self.profile = profile
        self.block_size = block_size
        self._free_at = {CopyDirection.OUT: -math.inf, CopyDirection.IN: -math.inf}
        self._pending: list[tuple[float, int]] = []  # heap of (finish, order)
        self._landing: dict[str, float] = {}  # job -> finish of its latest swap-in
        self.busy_seconds = 0.0

    def submit(self, copies: list[BlockCopy], now: float) -> None:
        """Queue a step's copies in the order issued."""
        for copy in copies:
            start = max(now, self._free_at[copy.direction])
            if copy.direction is CopyDirection.OUT:
                start = max(start, self._landing.get(copy.job_id, -math.inf))
            duration = self.profile.swap_time(len(copy.src) * self.block_size)
            finish = start + duration
            self._free_at[copy.direction] = finish
            self.busy_seconds += duration
            if copy.direction is CopyDirection.IN:
                self._landing[copy.job_id] = finish
            heapq.heappush(self._pending, (finish, copy.order))

    @property
    def next_done(self) -> float:
        """When the next copy in flight finishes (inf: none is)."""
        return self._pending[0][0] if self._pending else math.inf

    def collect(self, now: float) -> tuple[int, ...]:
        """The copies finished by ``now``, in finishing order."""
        done = []
        pending = self._pending
        while pending and pending[0][0] <= now:
            done.append(heapq.heappop(pending)[1])
        return tuple(done)
