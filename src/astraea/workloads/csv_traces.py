"""Request-level CSV traces (BurstGPT, Azure LLM inference) as one-call jobs.

Neither trace has tool calls or session ids, so there is no job structure to rebuild: each
row becomes a job of one segment with no tool (``input_tokens`` = the prompt, ``output_tokens``
= the answer), arriving at its timestamp relative to the trace's first row. A policy sees
them as single-call jobs, the case where job-aware scheduling can only act on lengths.

BurstGPT (HPMLL/BurstGPT, ``data/BurstGPT_*.csv``; README "Schema"): header
``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type``. ``Timestamp`` is
seconds since 0:00 of the first day; ``Model`` is ``ChatGPT`` or ``GPT-4``; ``Log Type`` is
``Conversation log`` or ``API log``. Rows with 0 response tokens are failed requests (the
``BurstGPT_N.csv`` files keep them; ``_without_fails_`` files drop them): skipped. A request
of 0 tokens counts as 1. Category: the model, lower case (``chatgpt``, ``gpt-4``).

Azure LLM inference traces (Azure/AzurePublicDataset: 2023 ``data/AzureLLMInferenceTrace_
{code,conv}.csv``, 2024 ``AzureLLMInferenceTrace_{code,conv}_1week.csv``): header
``TIMESTAMP,ContextTokens,GeneratedTokens``; ``TIMESTAMP`` is a date-time such as
``2023-11-16 18:17:03.9799600`` (7 fractional digits; 2024 files may carry a UTC offset).
Category: ``azure`` (or the caller's, e.g. ``azure-code``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from astraea.core.job import JobSpec, Segment
from astraea.workloads.trace import TraceFormatError

BURSTGPT_COLUMNS = ("Timestamp", "Model", "Request tokens", "Response tokens")
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def _rows(path: str | os.PathLike[str], columns: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    """(``FILE:LINE``, row) per data row, after checking the header names ``columns``."""
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in columns if c not in header]
            if missing:
                raise TraceFormatError(
                    f"{name}:1: missing column(s) {', '.join(map(repr, missing))} "
                    f"(header: {', '.join(header) or 'none'})"
                )
            reader.fieldnames = header
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # a blank line
                yield f"{name}:{reader.line_num}", row
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{name}: not valid UTF-8 ({exc.reason})") from None


def _int(row: dict[str, Any], key: str, where: str) -> int:
    raw = (row.get(key) or "").strip()
    try:
        value = int(raw)
    except ValueError:
        try:  # pandas exports write "12.0"
            as_float = float(raw)
        except ValueError:
            raise TraceFormatError(f"{where}: {key} must be an integer (got {raw!r})") from None
        if not as_float.is_integer():
            raise TraceFormatError(f"{where}: {key} must be an integer (got {raw!r})") from None
        value = int(as_float)
    if value < 0:
        raise TraceFormatError(f"{where}: {key} must be >= 0 (got {value})")
    return value


def _jobs(
    rows: list[tuple[float, str, int, int]], prefix: str, num_jobs: int | None, name: str
) -> list[JobSpec]:
    """One-call jobs from (time, category, input, output), times made relative to the first."""
    if not rows:
        raise TraceFormatError(f"{name}: no requests")
    rows.sort(key=lambda r: r[0])
    if num_jobs is not None:
        rows = rows[:num_jobs]
    start = rows[0][0]
    return [
        JobSpec(f"{prefix}-{i:06d}", t - start, cat, (Segment(max(1, n_in), n_out),))
        for i, (t, cat, n_in, n_out) in enumerate(rows)
    ]


def _load(
    path: str | os.PathLike[str],
    columns: tuple[str, ...],
    parse: Callable[[dict[str, Any], str], tuple[float, str, int, int] | None],
    prefix: str,
    num_jobs: int | None,
) -> list[JobSpec]:
    parsed = [parse(row, where) for where, row in _rows(path, columns)]
    return _jobs([r for r in parsed if r is not None], prefix, num_jobs, os.fspath(path))


def load_burstgpt(
    path: str | os.PathLike[str], *, num_jobs: int | None = None, include_failed: bool = False
) -> list[JobSpec]:
    """Jobs from a BurstGPT CSV (mapping in the module docstring); ``num_jobs`` keeps the
    first N by time. ``include_failed`` keeps 0-token answers as 1-token calls."""

    def parse(row: dict[str, Any], where: str) -> tuple[float, str, int, int] | None:
        raw = (row.get("Timestamp") or "").strip()
        try:
            t = float(raw)
        except ValueError:
            raise TraceFormatError(f"{where}: Timestamp must be seconds (got {raw!r})") from None
        if not t >= 0 or t == float("inf"):
            raise TraceFormatError(f"{where}: Timestamp must be a finite number >= 0")
        n_out = _int(row, "Response tokens", where)
        if n_out == 0 and not include_failed:
            return None
        model = (row.get("Model") or "").strip().lower().replace(" ", "-") or "burstgpt"
        return t, model, _int(row, "Request tokens", where), max(1, n_out)

    return _load(path, BURSTGPT_COLUMNS, parse, "burstgpt", num_jobs)


def _azure_time(raw: str, where: str) -> float:
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TraceFormatError(f"{where}: TIMESTAMP must be a date-time (got {raw!r})") from None
    return moment.timestamp() if moment.tzinfo else (moment - datetime(1970, 1, 1)).total_seconds()


def load_azure(
    path: str | os.PathLike[str], *, num_jobs: int | None = None, category: str = "azure"
) -> list[JobSpec]:
    """Jobs from an Azure LLM inference trace CSV, 2023 or 2024 (module docstring);
    ``num_jobs`` keeps the first N by time. 0 generated tokens count as 1."""

    def parse(row: dict[str, Any], where: str) -> tuple[float, str, int, int]:
        t = _azure_time(row.get("TIMESTAMP") or "", where)
        n_in = _int(row, "ContextTokens", where)
        return t, category, n_in, max(1, _int(row, "GeneratedTokens", where))

    return _load(path, AZURE_COLUMNS, parse, category, num_jobs)
