"""astraea's waiting queue order, kept in arrays so that re-keying it is not a Python loop.

Why: a response ratio moves with the clock, so every step re-keys the whole queue; at 10,000
active jobs (6,400 waiting) that loop and its sort took ~18 ms of a ~20 ms ``schedule()``
call. Here each waiting job's key parts (``Astraea._key_parts``: everything but the clock and
the mean claim) sit in numpy columns, refreshed only for jobs whose ``revision`` changed, and
the ratios, the aging rule and the order are computed per step in C. The arithmetic is the
same expression, in the same float64 operations, as ``Astraea.priorities``, so the order is
bit-for-bit the one a sort of those keys gives (ties by push order), which the tests check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from astraea.core.job import Job

KeyParts = tuple  # (revision, w0, size, claim, level, clocked), see Astraea._key_parts


class RatioOrder:
    """Dense columns over the waiting jobs (a removed job's slot takes the last one)."""

    def __init__(
        self,
        parts: Callable[[Job], KeyParts],
        mean_claim: Callable[[], float | None],
        lowest: int,
        aging: float,
    ) -> None:
        self._parts, self._mean = parts, mean_claim
        self._lowest, self._aging = lowest, aging
        self._jobs: list[Job] = []
        self._slot: dict[str, int] = {}
        self._cols = _Columns(64)

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: Job, seq: int) -> None:
        slot = len(self._jobs)
        self._cols.reserve(slot + 1)
        self._jobs.append(job)
        self._slot[job.job_id] = slot
        self._cols.seq[slot] = seq
        self._cols.write(slot, self._parts(job))

    def remove(self, job_id: str) -> None:
        slot = self._slot.pop(job_id)
        last = len(self._jobs) - 1
        if slot != last:
            moved = self._jobs[last]
            self._jobs[slot] = moved
            self._slot[moved.job_id] = slot
            self._cols.move(last, slot)
        self._jobs.pop()

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def ordered(self, now: float) -> list[Job]:
        """The waiting jobs, first to run first, as ``sorted(zip(priorities, seqs))``."""
        jobs, n = self._jobs, len(self._jobs)
        if n == 0:
            return []
        c = self._cols
        current = np.fromiter((job.revision for job in jobs), np.int64, count=n)
        for slot in np.flatnonzero(current != c.rev[:n]).tolist():
            c.write(slot, self._parts(jobs[slot]))
        mean = self._mean()
        scale = mean if mean else c.claim[:n]  # the policy's ``mean or claim``
        clock = np.where(c.clocked[:n], now, 0.0)
        ratio = 1.0 + (clock + c.w0[:n]) * scale / c.size[:n]
        level = c.level[:n]
        level = np.where((level == self._lowest) & (ratio > self._aging), 0, level)
        order = np.lexsort((c.seq[:n], -ratio, level))
        return [jobs[i] for i in order.tolist()]


class _Columns:
    """The key parts of each slot, one numpy array per part."""

    def __init__(self, capacity: int) -> None:
        self.rev = np.full(capacity, -1, np.int64)
        self.seq = np.zeros(capacity, np.int64)
        self.w0 = np.zeros(capacity)
        self.size = np.ones(capacity)
        self.claim = np.ones(capacity)
        self.level = np.zeros(capacity, np.int64)
        self.clocked = np.zeros(capacity, bool)

    _NAMES = ("rev", "seq", "w0", "size", "claim", "level", "clocked")

    def reserve(self, needed: int) -> None:
        capacity = len(self.rev)
        if needed <= capacity:
            return
        grown = max(needed, 2 * capacity)
        for name in self._NAMES:
            old = getattr(self, name)
            new = np.zeros(grown, old.dtype)
            new[:capacity] = old
            setattr(self, name, new)

    def write(self, slot: int, parts: KeyParts) -> None:
        rev, w0, size, claim, level, clocked = parts
        self.rev[slot], self.w0[slot], self.size[slot] = rev, w0, size
        self.claim[slot], self.level[slot], self.clocked[slot] = claim, level, clocked

    def move(self, src: int, dst: int) -> None:
        for name in self._NAMES:
            column = getattr(self, name)
            column[dst] = column[src]
