"""Importers: public agent/request datasets mapped to our jobs (see docs/trace-format.md).

InferCept (WukLab/InferCept): its harness ``benchmarks/final_tput_bench_real.py`` reads
``--exp-json`` (e.g. ``merged_exp_uniform.json``, the 6-augment mix on Google Drive, not in
the repo) as a JSON object ``{request_key: [step, ...]}``; ``benchmarks/combo_dataset.py``
builds it with uuid4 keys. A step holds ``prompt_tokens`` (or ``prompt`` text; only the first
step's is used), ``completion_tokens`` (or ``completion`` text), and, when the step ends in
an interception, ``api_time`` (s) and ``api_token_length`` (or ``api_token`` text): the
tokens the API returns. The harness decodes ``completion_tokens``, pauses ``api_time``,
appends ``api_token_length`` tokens, then moves to the next step; a step with neither field
(or both 0) ends the request.

Mooncake (kvcache-ai/Mooncake ``FAST25-release/traces/*.jsonl``): one request per line,
``timestamp`` (ms), ``input_length``, ``output_length``, ``hash_ids`` (one id per
512-token prefix block, the last one usually partial).
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass
from typing import Any

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.workloads.arrivals import poisson_arrivals
from astraea.workloads.trace import TraceFormatError, iter_json_lines

CHARS_PER_TOKEN = 4  # rough token count of raw text: len(text) // 4, at least 1
MOONCAKE_BLOCK = 512


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def read_json(path: str | os.PathLike[str]) -> Any:
    """A whole-file JSON dataset; bad JSON or UTF-8 raise ``TraceFormatError`` (FILE:LINE)."""
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"{name}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{name}: not valid UTF-8 ({exc.reason})") from None


def _tokens(step: dict[str, Any], count_key: str, text_key: str, where: str) -> int | None:
    """A step's token count, from the count field or (approximately) from its text."""
    if count_key in step:
        v = step[count_key]
        if not _is_int(v) or v < 0:
            raise TraceFormatError(f"{where}: {count_key} must be an integer >= 0 (got {v!r})")
        return v
    if text_key in step:
        text = step[text_key]
        if not isinstance(text, str):
            raise TraceFormatError(f"{where}: {text_key} must be a string")
        return len(text) // CHARS_PER_TOKEN
    return None


def _infercept_job(steps: Any, where: str, job_id: str, arrival: float, category: str) -> JobSpec:
    if not isinstance(steps, list) or not steps:
        raise TraceFormatError(f"{where}: a request must be a non-empty list of steps")
    segments: list[Segment] = []
    next_input: int | None = None
    for i, step in enumerate(steps):
        at = f"{where} step {i}"
        if not isinstance(step, dict):
            raise TraceFormatError(f"{at}: a step must be an object")
        if i == 0:
            prompt = _tokens(step, "prompt_tokens", "prompt", at)
            if prompt is None:
                raise TraceFormatError(f"{at}: missing 'prompt_tokens' (or 'prompt')")
            next_input = prompt
        completion = _tokens(step, "completion_tokens", "completion", at)
        if completion is None:
            raise TraceFormatError(f"{at}: missing 'completion_tokens' (or 'completion')")
        api_time = step.get("api_time", step.get("api_exec_time", 0))
        if not _is_number(api_time) or api_time < 0:
            raise TraceFormatError(
                f"{at}: api_time must be a finite number >= 0 (got {api_time!r})"
            )
        returned = _tokens(step, "api_token_length", "api_token", at) or 0
        calls = api_time > 0 or returned > 0
        tool = ToolCall(category, float(api_time)) if calls else None
        segments.append(Segment(max(1, next_input or 0), max(1, completion), tool))
        if not calls:
            break  # as in InferCept's harness, a step without a call ends the request
        next_input = returned
    if segments[-1].tool is not None:  # the API's answer still has to be read: 1-token reply
        segments.append(Segment(max(1, next_input or 0), 1, None))
    return JobSpec(job_id=job_id, arrival=arrival, category=category, segments=tuple(segments))


def load_infercept_dataset(
    path: str | os.PathLike[str],
    rate: float | None = None,
    seed: int = 0,
    *,
    num_jobs: int | None = None,
    category: str = "infercept",
) -> list[JobSpec]:
    """Jobs from an InferCept augmented-request dataset (layout in the module docstring).

    Step i becomes segment i: input = the first prompt (i = 0) or the previous step's API
    return length, output = its completion tokens, tool = its API call (name ``category``,
    latency ``api_time``). If the last step calls an API, a final segment reads the result
    and writes 1 token. Zero counts become 1 (our segments need >= 1 of each). Text fields
    count as ``len(text) // 4`` tokens. The 2048-token cap of InferCept's harness is not
    applied. ``api_exec_time`` (older files) is read as an alias of ``api_time``. Steps
    after the first one without a call are ignored, as the harness never reaches them.

    Entries are taken once each in file order, or, with ``num_jobs``, drawn with replacement
    (as the harness does). Arrivals: Poisson at ``rate`` jobs/s from ``seed``, or all at 0
    when ``rate`` is None. A JSON list of requests (no keys) is accepted too.
    """
    name = os.fspath(path)
    data = read_json(path)
    if isinstance(data, dict):
        entries = [(f"request {k!r}", v) for k, v in data.items()]
    elif isinstance(data, list):
        entries = [(f"request #{i}", v) for i, v in enumerate(data)]
    else:
        raise TraceFormatError(f"{name}:1: expected a JSON object or list of requests")
    if not entries:
        raise TraceFormatError(f"{name}: no requests")
    rng = random.Random(seed)
    if num_jobs is not None:
        if isinstance(num_jobs, bool) or not isinstance(num_jobs, int) or num_jobs < 1:
            raise ValueError(f"num_jobs must be an integer >= 1, got {num_jobs!r}")
        entries = rng.choices(entries, k=num_jobs)
    arrivals = [0.0] * len(entries) if rate is None else poisson_arrivals(len(entries), rate, rng)
    return [
        _infercept_job(steps, f"{name}: {label}", f"{category}-{i:06d}", t, category)
        for i, ((label, steps), t) in enumerate(zip(entries, arrivals, strict=True))
    ]


def _mooncake_request(obj: Any, where: str) -> tuple[float, int, int, list[int]]:
    if not isinstance(obj, dict):
        raise TraceFormatError(f"{where}: a request must be a JSON object")
    for key in ("timestamp", "input_length", "output_length", "hash_ids"):
        if key not in obj:
            raise TraceFormatError(f"{where}: missing field {key!r}")
    ts, n_in, n_out, hashes = (
        obj["timestamp"],
        obj["input_length"],
        obj["output_length"],
        obj["hash_ids"],
    )
    if not _is_number(ts) or ts < 0:
        raise TraceFormatError(f"{where}: timestamp must be a finite number >= 0 (got {ts!r})")
    for key, v in (("input_length", n_in), ("output_length", n_out)):
        if not _is_int(v) or v < 1:
            raise TraceFormatError(f"{where}: {key} must be an integer >= 1 (got {v!r})")
    if not isinstance(hashes, list) or not all(_is_int(h) for h in hashes):
        raise TraceFormatError(f"{where}: hash_ids must be a list of integers")
    return ts / 1000.0, n_in, n_out, hashes


@dataclass(slots=True)
class _Session:
    """A Mooncake job being assembled: its last request's full blocks keep it open."""

    arrival: float
    segments: list[Segment]
    last_arrival: float
    full_blocks: list[int]


def _prefix_keys(hashes: list[int]) -> list[int]:
    """keys[k] identifies hashes[:k] (chained hashes: O(len) for all prefixes)."""
    keys = [0]
    for h in hashes:
        keys.append(hash((keys[-1], h)))
    return keys


def load_mooncake_trace(
    path: str | os.PathLike[str],
    group_sessions: bool = True,
    *,
    min_shared_blocks: int = 2,
    block_size: int = MOONCAKE_BLOCK,
) -> list[JobSpec]:
    """Jobs from a Mooncake request trace (category and tool name ``"mooncake"``).

    Without grouping, each request is a one-segment job. With ``group_sessions``, a request
    R continues an earlier open job whose last request E it extends: E's full blocks
    (``input_length // block_size`` of its ``hash_ids``; its last, partial block is re-hashed
    once filled, so it cannot match) are a prefix of R's hash_ids, at least
    ``min_shared_blocks`` long (default 2: the conversation trace shares block 0, a system
    prompt, across all requests) and R has more blocks than that. The longest such prefix
    wins, then the latest job. R becomes the job's next segment: input = R's tokens beyond
    the shared prefix; E's segment gets a tool call lasting from E's arrival to R's (E's own
    run time is unknown, so E is assumed to end when it arrives). Timestamps are ms.
    """
    name = os.fspath(path)
    requests: list[tuple[float, int, int, list[int]]] = []
    for lineno, obj in iter_json_lines(path):
        requests.append(_mooncake_request(obj, f"{name}:{lineno}"))
    if not requests:
        raise TraceFormatError(f"{name}: empty trace: no request lines")
    requests.sort(key=lambda r: r[0])
    jobs: list[_Session] = []
    open_by_prefix: dict[tuple[int, int], int] = {}  # (blocks, prefix key) -> job index
    for t, n_in, n_out, hashes in requests:
        keys = _prefix_keys(hashes)
        index, shared = -1, 0
        if group_sessions:
            for k in range(len(hashes) - 1, max(min_shared_blocks, 1) - 1, -1):
                j = open_by_prefix.get((k, keys[k]), -1)
                if j >= 0 and jobs[j].full_blocks == hashes[:k]:  # guard against collisions
                    index, shared = j, k
                    break
        if index < 0:
            jobs.append(_Session(t, [Segment(n_in, n_out)], t, []))
            index = len(jobs) - 1
        else:
            job = jobs[index]
            del open_by_prefix[(len(job.full_blocks), keys[len(job.full_blocks)])]
            last = job.segments[-1]
            gap = ToolCall("mooncake", t - job.last_arrival)
            job.segments[-1] = Segment(last.input_tokens, last.output_tokens, gap)
            job.segments.append(Segment(max(1, n_in - shared * block_size), n_out))
            job.last_arrival = t
        full = min(n_in // block_size, len(hashes))
        jobs[index].full_blocks = hashes[:full]
        if group_sessions and full >= max(min_shared_blocks, 1):
            old = open_by_prefix.get((full, keys[full]), -1)
            if old >= 0:  # an older job with the same prefix is no longer reachable
                jobs[old].full_blocks = []
            open_by_prefix[(full, keys[full])] = index
    return [
        JobSpec(f"mooncake-{i:06d}", job.arrival, "mooncake", tuple(job.segments))
        for i, job in enumerate(jobs)
    ]
