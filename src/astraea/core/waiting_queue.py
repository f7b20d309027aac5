"""The queue of ready segments, kept in the policy's order.

Static-priority policies (FCFS, fixed priorities) keep a sorted list updated by binary
insertion, so a step only looks at the head; dynamic ones (response ratios, aging) are
re-sorted at each step, which is the price of a key that moves with time, unless the policy
keeps its own incremental order (``Policy.waiting_order``), as astraea does at scale.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator

from astraea.core.job import Job
from astraea.core.policy import Policy


class WaitingQueue:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._static = policy.static_priority
        self._seq = itertools.count()
        self._entries: list[tuple[object, int, Job]] = []
        self._members: set[str] = set()
        self._order = policy.waiting_order()

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, job: Job) -> bool:
        return job.job_id in self._members

    def push(self, job: Job, now: float) -> None:
        if job.job_id in self._members:
            raise ValueError(f"job {job.job_id} is already waiting")
        self._members.add(job.job_id)
        if self._order is not None:
            self._order.add(job, next(self._seq))
            return
        key = self._policy.priority(job, now) if self._static else 0
        entry = (key, next(self._seq), job)
        if self._static:
            bisect.insort(self._entries, entry)
        else:
            self._entries.append(entry)

    def ordered(self, now: float) -> Iterator[Job]:
        """Jobs in the order to try them now; remove admitted ones after the iteration."""
        if self._order is not None:
            return iter(self._order.ordered(now))
        entries = self._entries
        if not self._static and entries:
            keys = self._policy.priorities([e[2] for e in entries], now)
            # (key, push order) is unique, so the index is never compared; the last order is
            # mostly still right, and Timsort is linear on sorted runs.
            seqs = [e[1] for e in entries]
            ranked = sorted(zip(keys, seqs, range(len(entries)), strict=True))
            self._entries = entries = [entries[r[2]] for r in ranked]
        return (e[2] for e in entries)

    def remove_many(self, jobs: Iterable[Job]) -> None:
        """Remove jobs (usually a prefix of the order just returned)."""
        gone = {j.job_id for j in jobs}
        if not gone:
            return
        self._members -= gone
        if self._order is not None:
            for job_id in gone:
                self._order.remove(job_id)
            return
        entries = self._entries
        prefix = 0
        while prefix < len(entries) and entries[prefix][2].job_id in gone:
            prefix += 1
        del entries[:prefix]
        if len(gone) > prefix:
            self._entries = [e for e in entries if e[2].job_id not in gone]

    def jobs(self) -> list[Job]:
        if self._order is not None:
            return self._order.jobs()
        return [e[2] for e in self._entries]
