"""ShareGPT conversations as multi-call jobs.

Format: the ShareGPT dump that ``vllm bench serve --dataset-name sharegpt`` reads
(``ShareGPT_V3_unfiltered_cleaned_split.json``, vllm ``benchmarks/datasets`` ShareGPTDataset):
a JSON list of entries ``{"id": ..., "conversations": [{"from": ROLE, "value": TEXT}, ...]}``.
vLLM keeps entries with at least two turns and uses only the first (prompt) and the second
(reference completion). We keep the whole conversation, since a multi-turn chat is exactly a
job whose "tool" is the human.

Mapping (one entry = one job):

- each assistant turn (``from``: ``gpt``, ``chatgpt``, ``bing``, ``bard``, ``assistant``,
  ``model``) is one LLM call, i.e. one segment; its ``output_tokens`` = the turn's tokens;
- its ``input_tokens`` = the tokens of the turns since the previous assistant turn (the
  human's message, any ``system`` text); the first call also reads everything before it;
- between two calls the job waits on a tool named ``"user"``: the human reading and typing.
  The dump has no times, so the wait is drawn: lognormal, mean ``think_mean`` s (5 s) and sd
  ``think_sd`` s (3 s), the user think time Autellix (arXiv 2502.13965) assumes for ShareGPT;
  ``think_sd = 0`` makes it constant;
- consecutive assistant turns are one call; turns after the last assistant turn (a question
  never answered) are dropped; entries without a human turn before an assistant turn, or
  without any assistant turn, are skipped (vLLM skips entries shorter than two turns).

Tokens are counted from the text as ``len(text) // 4`` (at least 1): no tokenizer is needed,
the same rough rule as the InferCept importer. Arrivals: Poisson at ``rate`` jobs/s (all at 0
without a rate), from ``seed``; think times use a separate stream of the same seed.
"""

from __future__ import annotations

import os
import random
from typing import Any

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.workloads._dist import lognormal
from astraea.workloads.arrivals import poisson_arrivals
from astraea.workloads.importers import CHARS_PER_TOKEN, read_json
from astraea.workloads.trace import TraceFormatError

ASSISTANT = frozenset({"gpt", "chatgpt", "bing", "bard", "assistant", "model"})
HUMAN = frozenset({"human", "user"})
SYSTEM = frozenset({"system"})
THINK_MEAN, THINK_SD = 5.0, 3.0  # seconds (Autellix's ShareGPT user think time)


def text_tokens(text: str) -> int:
    """Rough token count of raw text: ``len(text) // 4``, at least 1."""
    return max(1, len(text) // CHARS_PER_TOKEN)


def _turns(entry: Any, where: str) -> list[tuple[str, int]] | None:
    """(kind, tokens) per turn, kind in {"user", "assistant"}; None for a skipped entry."""
    if not isinstance(entry, dict):
        raise TraceFormatError(f"{where}: an entry must be a JSON object")
    conv = entry.get("conversations")
    if conv is None:
        return None  # vLLM skips these too
    if not isinstance(conv, list):
        raise TraceFormatError(f"{where}: 'conversations' must be a list")
    turns: list[tuple[str, int]] = []
    for i, turn in enumerate(conv):
        at = f"{where} turn {i}"
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise TraceFormatError(f"{at}: a turn must be an object with a string 'value'")
        role = str(turn.get("from", "")).lower()
        if role in ASSISTANT:
            kind = "assistant"
        elif role in HUMAN or role in SYSTEM:
            kind = "user"
        else:
            raise TraceFormatError(f"{at}: unknown 'from' {turn.get('from')!r}")
        turns.append((kind, text_tokens(turn["value"])))
    return turns


def _calls(turns: list[tuple[str, int]]) -> list[tuple[int, int]]:
    """(input, output) per call: user tokens since the last answer, then the answer."""
    calls: list[tuple[int, int]] = []
    pending, answer = 0, 0
    for kind, n in turns:
        if kind == "user":
            if answer:
                calls.append((pending, answer))
                pending, answer = 0, 0
            pending += n
        elif pending or calls:  # an answer with a question before it
            answer += n
        # an assistant turn that opens the conversation has nothing to answer: dropped
    if answer:
        calls.append((pending, answer))
    return [(max(1, i), o) for i, o in calls]


def load_sharegpt(
    path: str | os.PathLike[str],
    rate: float | None = None,
    seed: int = 0,
    *,
    num_jobs: int | None = None,
    think_mean: float = THINK_MEAN,
    think_sd: float = THINK_SD,
    category: str = "sharegpt",
) -> list[JobSpec]:
    """Jobs from a ShareGPT JSON dump (mapping in the module docstring), in file order;
    ``num_jobs`` keeps the first N usable conversations."""
    if think_mean < 0 or think_sd < 0:
        raise ValueError("think_mean and think_sd must be >= 0")
    name = os.fspath(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise TraceFormatError(f"{name}:1: expected a JSON list of conversations")
    conversations: list[list[tuple[int, int]]] = []
    for i, entry in enumerate(data):
        turns = _turns(entry, f"{name}: entry #{i}")
        calls = _calls(turns) if turns else []
        if calls:
            conversations.append(calls)
        if num_jobs is not None and len(conversations) >= num_jobs:
            break
    if not conversations:
        raise TraceFormatError(f"{name}: no conversation with a question and an answer")
    arrival_rng, think_rng = random.Random(seed), random.Random(f"{seed}:think")
    n = len(conversations)
    arrivals = [0.0] * n if rate is None else poisson_arrivals(n, rate, arrival_rng)
    jobs = []
    for i, (calls, t) in enumerate(zip(conversations, arrivals, strict=True)):
        segments = []
        for k, (n_in, n_out) in enumerate(calls):
            last = k == len(calls) - 1
            wait = None if last else ToolCall("user", lognormal(think_rng, think_mean, think_sd))
            segments.append(Segment(n_in, n_out, wait))
        jobs.append(JobSpec(f"{category}-{i:06d}", t, category, tuple(segments)))
    return jobs
