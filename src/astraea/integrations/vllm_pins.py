"""Pinned KV blocks and memory for the astraea scheduler in vLLM 0.32.0 (imports vLLM).

A pin is a reference the plugin holds on a finished call's full (hashed) blocks
(``BlockPool.touch``): with a reference they are not in vLLM's free queue, so nothing evicts
them until the plugin gives it back (``free_blocks``; they become ordinary LRU cache, tail
first). Split from ``vllm_scheduler`` to keep each module small; used only as its base.
"""

from __future__ import annotations

import time
from typing import Any

from vllm.v1.request import Request, RequestStatus

from astraea.core.policy import KVContext
from astraea.integrations.trace import DecisionTrace
from astraea.integrations.tracker import JobTracker, Pin, Tracked


class PinningMixin:
    """Pins, memory reclaim and the KV snapshot the policy decides on."""

    astraea: JobTracker
    astraea_trace: DecisionTrace
    _memory_bound: bool

    def _pin(self, tracked: Tracked, request: Request, now: float) -> None:
        vllm: Any = self
        self._unpin(tracked, "repin", now)
        manager = vllm.kv_cache_manager
        blocks = [
            b
            for group in manager.get_blocks(request.request_id).blocks
            for b in group
            if not b.is_null and b.block_hash is not None
        ]
        if not blocks:
            return
        manager.block_pool.touch(blocks)
        tracked.pin = Pin(blocks, now, len(blocks) * vllm.block_size)
        self._trace(
            now,
            "pin",
            tracked,
            request.request_id,
            blocks=len(blocks),
            tokens=tracked.pin.tokens,
            pinned_total=self.astraea.num_pinned_blocks,
        )

    def _unpin(self, tracked: Tracked, reason: str, now: float, **fields: Any) -> None:
        vllm: Any = self
        pin = tracked.pin
        if pin is None:
            return
        tracked.pin = None
        vllm.kv_cache_manager.block_pool.free_blocks(reversed(pin.blocks))
        self.astraea.released(tracked)
        self._trace(
            now,
            "unpin",
            tracked,
            None,
            reason=reason,
            blocks=len(pin.blocks),
            held_s=round(now - pin.since, 4),
            pinned_total=self.astraea.num_pinned_blocks,
            **fields,
        )

    def _on_memory_full(self, request: Request, retry: Any) -> Any:
        """vLLM found no blocks for ``request``: give pinned blocks back before it preempts a
        running call, or before an admission stalls with nothing running."""
        vllm: Any = self
        if request.status != RequestStatus.RUNNING:
            self._memory_bound = True
            if vllm.running:
                return None
        now = time.monotonic()
        tracked = self.astraea.get(request.request_id)
        spare = tracked.job.job_id if tracked else None
        for victim in self.astraea.reclaim_order(self._kv_context(now), spare):
            self._unpin(victim, "memory", now, for_request=request.request_id)
            blocks = retry()
            if blocks is not None:
                return blocks
        return None

    def _kv_context(self, now: float) -> KVContext:
        vllm: Any = self
        pool = vllm.kv_cache_manager.block_pool
        total = pool.num_gpu_blocks - 1  # the null block is never free
        return KVContext(
            now=now,
            block_size=vllm.block_size,
            device_blocks_total=total,
            device_blocks_owned=total - pool.get_num_free_blocks(),
            host_blocks_free=0,  # no swap tier on vLLM-CPU (see the module docstring)
            memory_bound=self._memory_bound,
        )

    def _trace(
        self, now: float, event: str, tracked: Tracked, request_id: str | None, **fields: Any
    ) -> None:
        if self.astraea_trace.enabled:
            self.astraea_trace.write(
                now,
                event,
                job=tracked.job.job_id,
                request=request_id,
                level=tracked.level,
                **fields,
            )
