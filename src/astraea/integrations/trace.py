"""The plugin's own record of its decisions, one JSON object a line.

Tests and benchmarks read it to check that order and pinning follow the policy without
trusting vLLM's logs. Every record has ``t`` (seconds on the plugin's monotonic clock) and
``event``: ``arrive``, ``order``, ``admit``, ``preempt``, ``finish``, ``pin``, ``unpin``,
``job_end`` or ``shutdown``; the rest depends on the event (request, job, level, priority,
blocks, reason). Lines are flushed as written so a reader sees them while vLLM runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any


class DecisionTrace:
    """Appends records to ``path``; with an empty path it records nothing."""

    def __init__(self, path: str | Path | None) -> None:
        self._file: IO[str] | None = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = Path(path).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115 (lives as long as the scheduler)

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, t: float, event: str, **fields: Any) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"t": round(t, 6), "event": event, **fields}) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """All records of a trace file (a torn last line, from a live writer, is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
