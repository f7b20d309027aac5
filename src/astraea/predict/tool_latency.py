"""Tool latency per tool name, learned online.

A tool's name is its latency category (a web search, a code run, an image generator).
Until a tool has ``min_samples`` observations its prediction is the prior (a given mean,
or the mean over all tools seen so far); after that, its own running mean. Quantiles come
from a bounded window of recent samples, for policies that pin KV for a time-to-live.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class _ToolStats:
    count: int = 0
    total: float = 0.0
    recent: deque[float] = field(default_factory=deque)
    sorted_recent: list[float] = field(default_factory=list)


class ToolLatencyPredictor:
    def __init__(
        self,
        prior: dict[str, float] | None = None,
        default: float = 1.0,
        min_samples: int = 3,
        window: int = 256,
    ) -> None:
        self._prior = dict(prior or {})
        self._default = default
        self._min_samples = min_samples
        self._window = window
        self._stats: dict[str, _ToolStats] = {}
        self._all_count = 0
        self._all_total = 0.0

    def observe(self, tool: str, latency: float) -> None:
        stats = self._stats.setdefault(tool, _ToolStats())
        stats.count += 1
        stats.total += latency
        self._all_count += 1
        self._all_total += latency
        stats.recent.append(latency)
        bisect.insort(stats.sorted_recent, latency)
        if len(stats.recent) > self._window:
            old = stats.recent.popleft()
            del stats.sorted_recent[bisect.bisect_left(stats.sorted_recent, old)]

    def samples(self, tool: str) -> int:
        stats = self._stats.get(tool)
        return stats.count if stats else 0

    def mean(self, tool: str) -> float:
        stats = self._stats.get(tool)
        if stats and stats.count >= self._min_samples:
            return stats.total / stats.count
        if tool in self._prior:
            return self._prior[tool]
        if self._all_count:
            return self._all_total / self._all_count
        return self._default

    def quantile(self, tool: str, q: float) -> float:
        """The q-quantile (0..1) of recent latencies; the mean until enough samples."""
        stats = self._stats.get(tool)
        if not stats or stats.count < self._min_samples:
            return self.mean(tool)
        values = stats.sorted_recent
        index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
        return values[index]
