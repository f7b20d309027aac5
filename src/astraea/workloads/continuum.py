"""A Continuum-like coding/tool agent mix, as a generator.

Source: Continuum (Li et al., "Continuum: Efficient and Robust Multi-Turn LLM Agent
Scheduling with KV Cache Time-to-Live", arXiv 2511.02230), its trace statistics as restated
in ASTRAEA.md section 4, (mean, sd):

    SWE-bench agent   10.9 +- 2.1 turns   tool time 0.925 +- 3.55 s   ~70k tokens/program
    BFCL v4           6.3 +- 2.3 turns    tool time 1.92 +- 2.13 s    ~93k tokens/program

Choices made here:

* A turn is one LLM call; every turn but the last ends in a tool call, so a job of n turns
  has n segments and n - 1 tool calls. n = round(Normal(mean, sd)), clipped to >= 1.
* Tool time per call: lognormal matched to (mean, sd). SWE-bench's sd is ~3.8x its mean,
  a heavy tail: median ~0.23 s, p99 ~11 s.
* "Tokens per program" is read as the job's final context (all inputs and outputs,
  ``JobSpec.total_tokens``), the same meaning as InferCept's "context tokens". (The other
  reading, the sum of every turn's whole prompt, would give final contexts several times
  shorter, ~12k tokens for SWE-bench.) Only the mean is published; we draw it lognormal
  with coefficient of variation 0.3 (SWE-bench) or 0.2 (BFCL v4, whose mean lies nearer
  the window), redrawn if above 131072 tokens (Llama-3.1's 128k context window, the
  paper's model); the redraw trims the means by ~0.5% and ~1.5%.
* Outputs per turn (not published): lognormal, SWE-bench (250, 150) tokens (a thought and
  a shell/edit command), BFCL v4 (120, 80) tokens (reasoning plus a function call).
* The first prompt (system prompt, tool specs, task) takes a fraction of the context:
  SWE-bench 0.15, BFCL v4 0.25, each jittered by +-0.05. The rest after the outputs is
  shared over the n - 1 tool results with weights Uniform(0.5, 1.5); all pieces >= 1 token
  and the total is exact (outputs are scaled down in the rare case they do not fit).
* Category: uniform over the mix ("swebench", "bfcl_v4"); the tool name is the category.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.workloads._dist import (
    as_rng,
    jitter_weights,
    lognormal,
    lognormal_tokens,
    rounded_normal,
    split_streams,
    split_tokens,
)
from astraea.workloads.arrivals import poisson_arrivals

MAX_CONTEXT = 131072  # Llama-3.1 context window
FIRST_PROMPT_JITTER = 0.05
PIECE_JITTER = 0.5


@dataclass(frozen=True, slots=True)
class AgentClass:
    """Published turn/tool/token statistics plus our documented assumptions."""

    name: str
    turns_mean: float
    turns_sd: float
    tool_mean: float
    tool_sd: float
    context_mean: float
    context_cv: float
    first_fraction: float
    output_mean: float
    output_sd: float


CONTINUUM_CLASSES: dict[str, AgentClass] = {
    c.name: c
    for c in (
        AgentClass("swebench", 10.9, 2.1, 0.925, 3.55, 70_000, 0.3, 0.15, 250, 150),
        AgentClass("bfcl_v4", 6.3, 2.3, 1.92, 2.13, 93_000, 0.2, 0.25, 120, 80),
    )
}


def _context(rng: random.Random, cls: AgentClass, least: int) -> int:
    while True:
        c = round(lognormal(rng, cls.context_mean, cls.context_cv * cls.context_mean))
        if c <= MAX_CONTEXT:
            return max(c, least)


def continuum_job(rng: random.Random, job_id: str, arrival: float, cls: AgentClass) -> JobSpec:
    """One agent program of class ``cls``."""
    turns = min(rounded_normal(rng, cls.turns_mean, cls.turns_sd, low=1), MAX_CONTEXT // 2)
    context = _context(rng, cls, 2 * turns)
    frac = cls.first_fraction + rng.uniform(-FIRST_PROMPT_JITTER, FIRST_PROMPT_JITTER)
    first = min(max(round(frac * context), 1), context - (2 * turns - 1))
    outputs = [lognormal_tokens(rng, cls.output_mean, cls.output_sd) for _ in range(turns)]
    room = context - first - (turns - 1)  # what outputs may use, leaving 1 per tool result
    if turns == 1:  # a lone answer: the prompt takes what the output leaves
        outputs = [min(outputs[0], context - 1)]
        first = context - outputs[0]
    elif sum(outputs) > room:
        outputs = split_tokens(room, [float(o) for o in outputs])
    results = []
    if turns > 1:
        rest = context - first - sum(outputs)
        results = split_tokens(rest, jitter_weights(rng, turns - 1, PIECE_JITTER))
    segments = []
    for i in range(turns):
        tool = None
        if i < turns - 1:
            tool = ToolCall(cls.name, lognormal(rng, cls.tool_mean, cls.tool_sd))
        segments.append(Segment(first if i == 0 else results[i - 1], outputs[i], tool))
    return JobSpec(job_id=job_id, arrival=arrival, category=cls.name, segments=tuple(segments))


def generate_continuum(
    num_jobs: int,
    rate: float,
    rng: random.Random | int,
    *,
    categories: Sequence[str] | None = None,
) -> list[JobSpec]:
    """``num_jobs`` Continuum-like agent programs with Poisson arrivals at ``rate`` jobs/s."""
    names = list(CONTINUUM_CLASSES) if categories is None else list(categories)
    unknown = [c for c in names if c not in CONTINUUM_CLASSES]
    if unknown or not names:
        raise ValueError(
            f"unknown Continuum categories {unknown}; valid: {list(CONTINUUM_CLASSES)}"
        )
    arrival_rng, job_rng = split_streams(as_rng(rng))
    arrivals = poisson_arrivals(num_jobs, rate, arrival_rng)
    return [
        continuum_job(job_rng, f"continuum-{i:06d}", t, CONTINUUM_CLASSES[job_rng.choice(names)])
        for i, t in enumerate(arrivals)
    ]
