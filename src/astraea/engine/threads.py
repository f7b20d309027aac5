"""How a forward pass uses the cores: one torch team, or one-thread workers that meet rarely.

Why: on a small CPU shared with other processes, one OpenMP team with a thread per core
collapses as soon as anything else wants a core (every op ends in a barrier that waits for
the descheduled thread: a 512-token prefill went from ~1.1 s to 4-10 s here). A team of one
thread does not collapse, but under oversubscription (many runnable tasks, the OS sharing the
cores fairly) one thread gets one share where two threads get two. So the governor counts
how many *other* tasks want the CPU (``procs_running`` of ``/proc/loadavg`` minus this
process's running threads, sampled in the background; the median over the last half second,
so that a burst does not count) and picks a layout:

- nothing else runnable: one team of ``max_threads`` (fastest when the machine is ours);
- anything else runnable: one thread on the calling thread, and steps that split (several
  sequences, or a lone long prefill: runner.py, split.py) run on ``max_threads`` one-thread
  workers, so a descheduled worker costs its own share, not every op's barrier.

The earlier signal, the CPU time others *got* over the last interval, fed back on itself: a
spinning two-thread team of ours kept the others' share low, so it stayed at two threads and
collapsed. The count of runnable tasks is demand, whatever we take. The mean of the counts
was fooled by bursts: an idle vLLM beside us woke 8-11 threads at once now and then, which
lifted the mean over the threshold in 16% of our decode steps, each then ~50% slower in the
split layout (batch 4 at 1,500-token contexts: 120 ms against 81); the median stays 0 there
and is 1 beside a process that spins. Team sizes are applied on the calling thread every
time because OpenMP's team size is per thread.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
from collections import deque
from pathlib import Path
from typing import NamedTuple

import torch

_STAT = Path("/proc/stat")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_LOADAVG = Path("/proc/loadavg")
_TASKS = Path("/proc/self/task")

# Median other runnable tasks at or above which the machine counts as shared.
SHARED_AT = 0.5


class Layout(NamedTuple):
    """``team``: torch threads on the calling thread; ``workers``: one-thread workers for a
    step that splits (1: no split)."""

    team: int
    workers: int


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (all cores, steal included), or None
    where ``/proc/stat`` cannot be read (the demo's load probe reads it)."""
    try:
        fields = _STAT.read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / _TICKS


def own_running_threads() -> int:
    """This process's threads in state R (running or runnable) right now."""
    count = 0
    with contextlib.suppress(OSError):
        for task in os.listdir(_TASKS):
            with contextlib.suppress(OSError):
                stat = (_TASKS / task / "stat").read_text()
                if stat[stat.rindex(")") + 2] == "R":
                    count += 1
    return count


def others_runnable() -> int | None:
    """Runnable tasks on the machine that are not this process's, or None where
    ``/proc/loadavg`` cannot be read."""
    try:
        running = int(_LOADAVG.read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - own_running_threads())


def layout_for(others: float, max_threads: int) -> Layout:
    """The layout while ``others`` other tasks (median) want the CPU."""
    if max_threads <= 1:
        return Layout(1, 1)
    if others < SHARED_AT:
        return Layout(max_threads, 1)
    return Layout(1, max_threads)


class LoadSampler:
    """A daemon thread that counts other runnable tasks every ``period`` seconds and keeps
    the last ``window`` seconds of counts (reads two small /proc files: ~0.1 ms)."""

    def __init__(self, period: float = 0.05, window: float = 0.5) -> None:
        self.period = period
        self._counts: deque[int] = deque(maxlen=max(1, round(window / period)))
        self._stop = threading.Event()
        self.available = others_runnable() is not None
        if self.available:
            threading.Thread(target=self._loop, name="astraea-load", daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            count = others_runnable()
            if count is not None:
                self._counts.append(count)

    def median(self) -> float:
        """The median count over the window (0 before the first sample)."""
        counts = list(self._counts)
        return statistics.median(counts) if counts else 0.0

    def close(self) -> None:
        self._stop.set()


_SAMPLER: LoadSampler | None = None
_SAMPLER_LOCK = threading.Lock()


def shared_sampler() -> LoadSampler:
    """One sampler per process, started on first use (every runner reads the same machine)."""
    global _SAMPLER
    with _SAMPLER_LOCK:
        if _SAMPLER is None:
            _SAMPLER = LoadSampler()
        return _SAMPLER


class ThreadGovernor:
    """``layout()`` before each step; ``apply()`` sets the calling thread's team to
    ``max_threads``, or to one thread while other tasks want the CPU (``adaptive``)."""

    def __init__(self, max_threads: int | None = None, adaptive: bool = True) -> None:
        self.cores = usable_cores()
        self.max_threads = max_threads or self.cores
        self._sampler = shared_sampler() if adaptive and self.max_threads > 1 else None
        self.adaptive = self._sampler is not None and self._sampler.available
        self.others = 0.0  # median other runnable tasks when last asked
        self.current = Layout(self.max_threads, 1)

    @property
    def threads(self) -> int:
        return self.current.team

    def layout(self) -> Layout:
        """The layout to use now (re-read from the sampler when adaptive)."""
        if self.adaptive:
            assert self._sampler is not None
            self.others = self._sampler.median()
            self.current = layout_for(self.others, self.max_threads)
        return self.current

    def apply(self, threads: int | None = None) -> int:
        """Set the team size on the calling thread (``threads``, else the current layout's
        team); set every time, not cached: MKL's count is process-wide, so another thread
        may have changed it (the call costs well under a microsecond)."""
        count = threads if threads is not None else self.current.team
        torch.set_num_threads(count)
        return count
