"""Our JSONL trace format: one agent job per line (see docs/trace-format.md).

Reading is strict because a silently mis-read trace skews every result built on it: each
bad line raises ``TraceFormatError`` with ``FILE:LINE: what is wrong``. Unknown keys are
ignored at the job level (room for annotations such as ``"meta"``) but rejected inside a
segment or tool, where a typo would otherwise change the workload.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

from astraea.core.job import JobSpec, Segment, ToolCall

JOB_KEYS = ("job_id", "arrival", "category", "segments")
SEGMENT_KEYS = frozenset({"input_tokens", "output_tokens", "tool"})
TOOL_KEYS = frozenset({"name", "latency"})


class TraceFormatError(ValueError):
    """A trace (or a job dict) that does not follow the documented format."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if key not in obj:
        raise TraceFormatError(f"{where}missing field {key!r}")
    if not _is_int(value) or value < 1:
        raise TraceFormatError(f"{where}{key} must be an integer >= 1 (got {value!r})")
    return value


def _seconds(obj: dict[str, Any], key: str, where: str) -> float:
    if key not in obj:
        raise TraceFormatError(f"{where}missing field {key!r}")
    value = obj[key]
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise TraceFormatError(f"{where}{key} must be a finite number >= 0 (got {value!r})")
    return float(value)


def _text(obj: dict[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise TraceFormatError(f"{where}missing field {key!r}")
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise TraceFormatError(f"{where}{key} must be a non-empty string (got {value!r})")
    return value


def _tool_from_dict(obj: Any, where: str) -> ToolCall:
    if not isinstance(obj, dict):
        raise TraceFormatError(f"{where}tool must be an object or null (got {obj!r})")
    extra = sorted(set(obj) - TOOL_KEYS)
    if extra:
        raise TraceFormatError(f"{where}unknown tool field(s) {', '.join(map(repr, extra))}")
    return ToolCall(
        name=_text(obj, "name", where + "tool "), latency=_seconds(obj, "latency", where + "tool ")
    )


def _segment_from_dict(obj: Any, index: int, last: bool) -> Segment:
    where = f"segment {index}: "
    if not isinstance(obj, dict):
        raise TraceFormatError(f"{where}must be an object (got {obj!r})")
    extra = sorted(set(obj) - SEGMENT_KEYS)
    if extra:
        raise TraceFormatError(f"{where}unknown field(s) {', '.join(map(repr, extra))}")
    input_tokens = _count(obj, "input_tokens", where)
    output_tokens = _count(obj, "output_tokens", where)
    if "tool" not in obj:
        raise TraceFormatError(f"{where}missing field 'tool' (use null for none)")
    raw_tool = obj["tool"]
    if last and raw_tool is not None:
        raise TraceFormatError(f"{where}the last segment must have tool null")
    if not last and raw_tool is None:
        raise TraceFormatError(f"{where}only the last segment may have tool null")
    tool = None if raw_tool is None else _tool_from_dict(raw_tool, where)
    return Segment(input_tokens=input_tokens, output_tokens=output_tokens, tool=tool)


def job_from_dict(obj: Any) -> JobSpec:
    """Build a ``JobSpec`` from one decoded trace line; raises ``TraceFormatError``."""
    if not isinstance(obj, dict):
        raise TraceFormatError(f"a job must be a JSON object (got {type(obj).__name__})")
    job_id = _text(obj, "job_id", "")
    arrival = _seconds(obj, "arrival", "")
    category = _text(obj, "category", "")
    raw_segments = obj.get("segments")
    if not isinstance(raw_segments, list) or not raw_segments:
        raise TraceFormatError(f"segments must be a non-empty list (got {raw_segments!r})")
    last = len(raw_segments) - 1
    segments = tuple(_segment_from_dict(s, i, i == last) for i, s in enumerate(raw_segments))
    try:
        return JobSpec(job_id=job_id, arrival=arrival, category=category, segments=segments)
    except ValueError as exc:  # defensive: the checks above should have caught it
        raise TraceFormatError(str(exc)) from exc


def job_to_dict(job: JobSpec) -> dict[str, Any]:
    """The trace-line form of a job (the inverse of ``job_from_dict``)."""
    return {
        "job_id": job.job_id,
        "arrival": job.arrival,
        "category": job.category,
        "segments": [
            {
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "tool": None
                if s.tool is None
                else {"name": s.tool.name, "latency": s.tool.latency},
            }
            for s in job.segments
        ],
    }


def _reject_constant(name: str) -> Any:
    raise TraceFormatError(f"non-finite number {name} is not allowed")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def iter_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each JSON line of a file; blank lines and ``#``
    comments are skipped; bad UTF-8, bad JSON and non-finite numbers raise TraceFormatError
    naming the file and line. Shared by every JSONL reader (our traces, Mooncake's)."""
    name = os.fspath(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise TraceFormatError(f"{name}:{lineno}: not valid UTF-8 ({exc.reason})") from None
            if not line or line.startswith("#"):
                continue
            try:
                obj = json.loads(line, parse_constant=_reject_constant)
            except TraceFormatError as exc:
                raise TraceFormatError(f"{name}:{lineno}: {exc}") from None
            except json.JSONDecodeError as exc:
                msg = f"invalid JSON: {exc.msg} at column {exc.colno}"
                raise TraceFormatError(f"{name}:{lineno}: {msg}") from None
            except RecursionError:
                raise TraceFormatError(
                    f"{name}:{lineno}: invalid JSON: nested too deeply"
                ) from None
            yield lineno, obj


def read_trace(path: str | os.PathLike[str]) -> list[JobSpec]:
    """Read a JSONL trace; jobs come back sorted by arrival (ties keep file order)."""
    name = os.fspath(path)
    jobs: list[JobSpec] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_json_lines(path):
        try:
            job = job_from_dict(obj)
        except TraceFormatError as exc:
            raise TraceFormatError(f"{name}:{lineno}: {_clip(str(exc), 200)}") from None
        if job.job_id in first_line:
            raise TraceFormatError(
                f"{name}:{lineno}: duplicate job_id {_clip(job.job_id)!r} "
                f"(first seen on line {first_line[job.job_id]})"
            )
        first_line[job.job_id] = lineno
        jobs.append(job)
    if not jobs:
        raise TraceFormatError(f"{name}: empty trace: no job lines (only blanks or comments)")
    jobs.sort(key=lambda j: j.arrival)
    return jobs


def write_trace(jobs: Iterable[JobSpec], path: str | os.PathLike[str]) -> None:
    """Write jobs as JSONL, one per line, in the order given.

    Floats are written with Python's shortest round-trip repr, so ``read_trace`` gives back
    equal ``JobSpec``s. Refuses what ``read_trace`` would reject (no jobs, duplicate ids).
    """
    jobs = list(jobs)
    if not jobs:
        raise ValueError("refusing to write an empty trace (read_trace rejects it)")
    seen: set[str] = set()
    for job in jobs:
        if job.job_id in seen:
            raise ValueError(f"duplicate job_id {job.job_id!r}")
        seen.add(job.job_id)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for job in jobs:
            f.write(json.dumps(job_to_dict(job), allow_nan=False) + "\n")
