"""Logical KV cache of all jobs across two tiers, plus vLLM-style evictable prefix caching.

A job's KV is in one of four places (``KVLocation``): nowhere, owned blocks on the
accelerator (running or preserved), evictable cached blocks on the accelerator (vLLM's LRU
prefix cache: reusable by the job's next call unless someone needs the memory first), or
blocks on the host tier (swapped out). Allocation takes free blocks first, then evicts
cached blocks, least recently cached job first and each job's tail blocks first, so what
survives of a job's cache is always a prefix (as with vLLM's hash-chained blocks).
"""

from __future__ import annotations

import enum
import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from astraea.core.block_pool import BlockPool, OutOfBlocksError


class CopyDirection(enum.Enum):
    OUT = "out"  # device -> host (swap out)
    IN = "in"  # host -> device (swap in)


@dataclass(frozen=True, slots=True)
class BlockCopy:
    """Copy of one job's KV between tiers; ``src[i]`` goes to ``dst[i]``. ``order`` numbers
    the copies in the order the manager issued them (a plan lists them so, and an executor
    runs them so: a plan may swap a job in and out again, or reuse blocks another copy just
    freed); with copy engines it names the copy when the executor reports it done."""

    job_id: str
    src: tuple[int, ...]
    dst: tuple[int, ...]
    num_tokens: int
    order: int = 0
    direction: CopyDirection = CopyDirection.OUT


def blocks_for(num_tokens: int, block_size: int) -> int:
    return -(-num_tokens // block_size)


class KVCacheManager:
    """Block tables per job on the device and host tiers; the only writer of both pools."""

    def __init__(
        self,
        num_device_blocks: int,
        num_host_blocks: int,
        block_size: int,
        deferred_copies: bool = False,
    ) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = block_size
        self.device = BlockPool(num_device_blocks, "device")
        self.host = BlockPool(num_host_blocks, "host")
        # Owned device blocks, as tuples: a plan hands them out as they are (no copy per step),
        # and a table changes only when it grows by a block or shrinks.
        self._tables: dict[str, tuple[int, ...]] = {}
        self._cached: OrderedDict[str, list[int]] = OrderedDict()  # evictable, LRU first
        self._num_cached_blocks = 0
        self._host_tables: dict[str, list[int]] = {}
        self._host_tokens: dict[str, int] = {}
        self.num_evicted_blocks = 0
        self._copy_order = itertools.count(1)
        # With a copy engine beside compute a copy's source blocks stay taken until the
        # executor says it is done (``copy_done``), and a job swapped in cannot compute until
        # its copy has landed (``arriving``).
        self.deferred_copies = deferred_copies
        self._in_flight: dict[int, BlockCopy] = {}
        self._arriving: dict[str, int] = {}  # job -> order of its swap-in in flight

    # ---- queries -------------------------------------------------------------------------
    @property
    def num_free_device_blocks(self) -> int:
        """Blocks an allocation can get now: free ones plus evictable cached ones."""
        return self.device.num_free + self._num_cached_blocks

    @property
    def num_owned_device_blocks(self) -> int:
        return self.device.num_used - self._num_cached_blocks

    @property
    def num_cached_blocks(self) -> int:
        return self._num_cached_blocks

    def table(self, job_id: str) -> tuple[int, ...]:
        """The job's owned device blocks now (immutable)."""
        return self._tables.get(job_id, ())

    def num_blocks(self, job_id: str) -> int:
        table = self._tables.get(job_id)
        return len(table) if table else 0

    def cached_tokens(self, job_id: str) -> int:
        blocks = self._cached.get(job_id)
        return len(blocks) * self.block_size if blocks else 0

    def host_tokens(self, job_id: str) -> int:
        return self._host_tokens.get(job_id, 0)

    def host_blocks(self, job_id: str) -> int:
        table = self._host_tables.get(job_id)
        return len(table) if table else 0

    def can_allocate(self, num_blocks: int, exclude_cached_of: str | None = None) -> bool:
        """Whether ``num_blocks`` more blocks can be had (by eviction if need be); the cached
        blocks of ``exclude_cached_of`` do not count, since that job is about to reuse them."""
        available = self.device.num_free + self._num_cached_blocks
        if exclude_cached_of is not None:
            available -= len(self._cached.get(exclude_cached_of, ()))
        return num_blocks <= available

    # ---- device tier -----------------------------------------------------------------------
    def allocate(self, job_id: str, num_blocks: int) -> None:
        """Append ``num_blocks`` blocks to the job's table, evicting cached blocks if needed."""
        if num_blocks <= 0:
            return
        shortfall = num_blocks - self.device.num_free
        if shortfall > 0:
            self._evict(shortfall)
        self._tables[job_id] = self._tables.get(job_id, ()) + tuple(
            self.device.allocate(num_blocks, job_id)
        )

    def ensure_tokens(self, job_id: str, num_tokens: int) -> None:
        """Grow the job's table to cover ``num_tokens`` tokens."""
        self.allocate(job_id, blocks_for(num_tokens, self.block_size) - self.num_blocks(job_id))

    def blocks_needed(self, job_id: str, num_tokens: int) -> int:
        return max(0, blocks_for(num_tokens, self.block_size) - self.num_blocks(job_id))

    def trim(self, job_id: str, num_tokens: int) -> None:
        """Free the job's tail blocks beyond what ``num_tokens`` tokens need."""
        table = self._tables.get(job_id)
        if not table:
            return
        keep = blocks_for(num_tokens, self.block_size)
        if keep < len(table):
            self.device.free(table[keep:])
            self._tables[job_id] = table[:keep]

    def free(self, job_id: str) -> None:
        """Drop everything the job holds on every tier (job finished or discarded)."""
        table = self._tables.pop(job_id, None)
        if table:
            self.device.free(table)
        self._arriving.pop(job_id, None)
        self.drop_cached(job_id)
        host = self._host_tables.pop(job_id, None)
        self._host_tokens.pop(job_id, None)
        if host:
            self.host.free(host)

    # ---- evictable prefix cache -------------------------------------------------------------
    def cache(self, job_id: str, num_tokens: int) -> int:
        """Turn the job's owned blocks into evictable cache (most recent in LRU order).

        Only full blocks keep their content (a partial block has no hash in vLLM), so the
        partial tail is freed. Returns the cached prefix length in tokens."""
        table = self._tables.pop(job_id, None)
        if not table:
            return 0
        full = min(len(table), num_tokens // self.block_size)
        if full < len(table):
            self.device.free(table[full:])
        if full:
            self.drop_cached(job_id)
            self._cached[job_id] = list(table[:full])
            self._num_cached_blocks += full
        return full * self.block_size

    def claim_cached(self, job_id: str) -> int:
        """Make the job's surviving cached prefix owned again; returns its length in tokens."""
        blocks = self._cached.pop(job_id, None)
        if not blocks:
            return 0
        self._num_cached_blocks -= len(blocks)
        if self._tables.get(job_id):
            raise AssertionError(f"job {job_id} has owned and cached blocks at once")
        self._tables[job_id] = tuple(blocks)
        return len(blocks) * self.block_size

    def drop_cached(self, job_id: str) -> None:
        blocks = self._cached.pop(job_id, None)
        if blocks:
            self._num_cached_blocks -= len(blocks)
            self.device.free(blocks)

    def _evict(self, count: int) -> None:
        cached = self._cached
        while count > 0:
            if not cached:
                raise OutOfBlocksError(f"device pool: {count} more blocks needed, none evictable")
            job_id, blocks = next(iter(cached.items()))
            take = min(count, len(blocks))
            victims = blocks[len(blocks) - take :]
            del blocks[len(blocks) - take :]
            victims.reverse()  # tail block first, as vLLM frees a request's blocks
            self.device.free(victims)
            self._num_cached_blocks -= take
            self.num_evicted_blocks += take
            count -= take
            if not blocks:
                del cached[job_id]

    # ---- host tier ---------------------------------------------------------------------------
    def can_swap_out(self, job_id: str) -> bool:
        return 0 < self.num_blocks(job_id) <= self.host.num_free

    def swap_out(self, job_id: str, num_tokens: int) -> BlockCopy:
        """Move the job's owned device blocks to the host tier (caller checked room)."""
        table = self._tables.pop(job_id)
        host = self.host.allocate(len(table), job_id)
        self._host_tables[job_id] = host
        self._host_tokens[job_id] = num_tokens
        copy = BlockCopy(job_id, table, tuple(host), num_tokens, next(self._copy_order))
        if self.deferred_copies:
            self._in_flight[copy.order] = copy  # the device blocks free when it has left
        else:
            self.device.free(table)
        return copy

    def swap_in(self, job_id: str) -> BlockCopy:
        """Bring the job's host blocks back to new device blocks (caller checked room)."""
        host = self._host_tables.pop(job_id)
        num_tokens = self._host_tokens.pop(job_id)
        self.allocate(job_id, len(host))
        dst = self._tables[job_id][-len(host) :]
        copy = BlockCopy(
            job_id, tuple(host), dst, num_tokens, next(self._copy_order), CopyDirection.IN
        )
        if self.deferred_copies:
            self._in_flight[copy.order] = copy  # the host blocks free when it has landed
            self._arriving[job_id] = copy.order
        else:
            self.host.free(host)
        return copy

    # ---- copies in flight (deferred_copies) ------------------------------------------------
    def copy_done(self, order: int) -> None:
        """The executor finished copy ``order``: its source blocks are free, and a job it
        brought back may compute."""
        copy = self._in_flight.pop(order)
        if copy.direction is CopyDirection.OUT:
            self.device.free(copy.src)
        else:
            self.host.free(copy.src)
            if self._arriving.get(copy.job_id) == order:
                del self._arriving[copy.job_id]

    @property
    def arriving(self) -> dict[str, int]:
        """Jobs whose KV is still being copied back to the device (read-only)."""
        return self._arriving

    # ---- invariants ----------------------------------------------------------------------------
    def check_integrity(self) -> None:
        """Every used block is in exactly one table of its owner, counters agree."""
        tables: dict[str, Sequence[int]] = dict(self._tables)
        for job_id, blocks in self._cached.items():
            if tables.get(job_id):
                raise AssertionError(f"job {job_id} has owned and cached blocks at once")
            tables[job_id] = blocks
        host_tables: dict[str, Sequence[int]] = dict(self._host_tables)
        for copy in self._in_flight.values():  # sources stay with their job until done
            held = tables if copy.direction is CopyDirection.OUT else host_tables
            held[copy.job_id] = (*held.get(copy.job_id, ()), *copy.src)
        self.device.check_integrity(tables)
        self.host.check_integrity(host_tables)
        if self._num_cached_blocks != sum(len(b) for b in self._cached.values()):
            raise AssertionError("cached block counter out of sync")
        if set(self._host_tables) != set(self._host_tokens):
            raise AssertionError("host tables and host token counts disagree")
