"""How many torch threads a forward pass gets, set on the thread that runs it.

Why a governor: on a small CPU shared with other processes, one OpenMP team with a thread per
core collapses as soon as anything else takes a core (every op ends in a barrier that waits
for the descheduled thread: a 16-sequence decode step went from ~0.2 s to 3-6 s here), while
a team one thread smaller loses little. So, every ``interval`` seconds, the governor reads how
much CPU the rest of the machine used (``/proc/stat`` minus this process's own CPU time) and
sizes the team to the cores left over. It is applied on the calling thread each time because
OpenMP's team size is per thread: a count set on one thread does nothing for another (the
server's engine thread once ran with torch's default team for exactly that reason).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from pathlib import Path

import torch

_STAT = Path("/proc/stat")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (all cores, steal included), or None
    where ``/proc/stat`` cannot be read."""
    try:
        fields = _STAT.read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / _TICKS


def threads_for(cores: int, others_busy: float, max_threads: int) -> int:
    """Team size given the cores other processes keep busy: round the free cores up once
    they are more than 0.4 of a core free (a light neighbour costs a full team little, a
    spinning one costs it everything)."""
    free = cores - max(0.0, others_busy)
    return max(1, min(max_threads, math.floor(free + 0.6)))


class ThreadGovernor:
    """``apply()`` before each forward pass: sets ``torch.set_num_threads`` on this thread
    to ``max_threads``, or fewer while other processes keep cores busy (``adaptive``)."""

    def __init__(
        self, max_threads: int | None = None, adaptive: bool = True, interval: float = 0.5
    ) -> None:
        self.cores = usable_cores()
        self.max_threads = max_threads or self.cores
        self._last = self._sample()
        self.adaptive = adaptive and self._last[1] is not None
        self.interval = interval
        self.threads = self.max_threads
        self.others_busy = 0.0  # cores the rest of the machine used over the last interval
        self._lock = threading.Lock()

    def _sample(self) -> tuple[float, float | None, float]:
        return time.monotonic(), machine_busy_seconds(), time.process_time()

    def update(self) -> int:
        """Re-read the machine's load if ``interval`` has passed; the team size to use."""
        if not self.adaptive:
            return self.threads
        with self._lock:
            now = time.monotonic()
            if now - self._last[0] >= self.interval:
                sample = self._sample()
                wall = sample[0] - self._last[0]
                machine = (sample[1] or 0.0) - (self._last[1] or 0.0)
                others = machine - (sample[2] - self._last[2])
                self.others_busy = max(0.0, others / wall)
                self.threads = threads_for(self.cores, self.others_busy, self.max_threads)
                self._last = sample
            return self.threads

    def apply(self, threads: int | None = None) -> int:
        """Set the team size on the calling thread (``threads``, else ``update()``); set
        every time, not cached: MKL's count is process-wide, so another thread may have
        changed it (the call costs well under a microsecond)."""
        count = threads if threads is not None else self.update()
        torch.set_num_threads(count)
        return count
