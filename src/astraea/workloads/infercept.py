"""InferCept's six-augmentation workload, as a generator.

Source: InferCept (Abhyankar et al., "INFERCEPT: Efficient Intercept Support for Augmented
Large Language Model Inference", ICML 2024), its table of augmentation types, as restated in
the project reference ASTRAEA.md, section 4. Per type: interception (tool) time in seconds,
interceptions per request and context tokens, each as (mean, standard deviation):

    type          tool time s      calls/job     context tokens
    math          9e-5, 6e-5       3.75, 1.3     1422, 738
    qa            0.69, 0.17       2.52, 1.73    1846, 428
    virtual_env   0.09, 0.014      28.18, 15.2   2185, 115     (ALFWorld)
    chatbot       28.6, 15.6       4.45, 1.96    753, 703
    image         20.03, 7.8       6.91, 3.93    1247, 792
    tts           17.24, 7.6       6.91, 3.93    1251, 792

The harness it mimics: Poisson job arrivals, contexts capped at 2048 tokens.

Choices made here (the table gives only means and spreads):

* Type: uniform over the requested categories (all six by default). Category = type name,
  and every tool call of the job is named after it (the tool's latency category).
* Tool calls k: round(Normal(mean, sd)), clipped to >= 1 (and to <= 1023 so the job fits
  in the cap). Clipping lifts the mean a little where the spread is wide (qa: ~+4%).
  The job has k + 1 segments: k end in a tool call, the last in the answer.
* Tool latency, per call: lognormal with the table's mean and sd (positive, right-skewed).
* Final context C (= all input + output tokens of the job, ``JobSpec.total_tokens``):
  Normal(mean, sd) truncated to [2(k+1), 2048] (inverse-CDF draw). The upper bound is
  InferCept's 2048-token harness cap; the lower bound is the least a job of k+1 segments
  can hold (1 input + 1 output token per segment). Truncation moves the means away from
  the table: expected contexts are about math 1220, qa 1620, virtual_env 1990, chatbot 886,
  image 1126, tts 1127 (the cap cuts upper tails; chatbot's normal has much mass below 0).
  ALFWorld's 2185 lies above the cap: the cap applies, so its contexts come from the
  normal's tail below 2048; after a ~800-token first prompt, its ~29 segments get ~20
  tokens per output and per tool result.
* Split of C: the first prompt takes a fraction f ~ Uniform(0.3, 0.5) of C (about 40%).
  The rest is shared over the k+1 outputs and the k tool results with weights
  Uniform(0.5, 1.5) each (jitter), every piece >= 1 token, largest-remainder rounding so
  the pieces sum to C exactly.
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
    rounded_normal,
    split_streams,
    split_tokens,
    truncated_normal,
)
from astraea.workloads.arrivals import poisson_arrivals

CONTEXT_CAP = 2048  # InferCept's harness cap on a job's context (tokens)
FIRST_PROMPT_FRACTION = (0.3, 0.5)  # first prompt share of the context, uniform in this range
PIECE_JITTER = 0.5  # weights of the other pieces: uniform in [1 - j, 1 + j]


@dataclass(frozen=True, slots=True)
class AugmentationType:
    """One row of InferCept's table: (mean, sd) of tool time, calls and context."""

    name: str
    tool_mean: float
    tool_sd: float
    calls_mean: float
    calls_sd: float
    context_mean: float
    context_sd: float


INFERCEPT_TYPES: dict[str, AugmentationType] = {
    t.name: t
    for t in (
        AugmentationType("math", 9e-5, 6e-5, 3.75, 1.3, 1422, 738),
        AugmentationType("qa", 0.69, 0.17, 2.52, 1.73, 1846, 428),
        AugmentationType("virtual_env", 0.09, 0.014, 28.18, 15.2, 2185, 115),
        AugmentationType("chatbot", 28.6, 15.6, 4.45, 1.96, 753, 703),
        AugmentationType("image", 20.03, 7.8, 6.91, 3.93, 1247, 792),
        AugmentationType("tts", 17.24, 7.6, 6.91, 3.93, 1251, 792),
    )
}


def infercept_job(
    rng: random.Random, job_id: str, arrival: float, kind: AugmentationType
) -> JobSpec:
    """One job of augmentation type ``kind`` (see the module docstring for the recipe)."""
    max_calls = CONTEXT_CAP // 2 - 1
    calls = min(rounded_normal(rng, kind.calls_mean, kind.calls_sd, low=1), max_calls)
    n_seg = calls + 1
    context = round(
        truncated_normal(rng, kind.context_mean, kind.context_sd, 2 * n_seg, CONTEXT_CAP)
    )
    others = 2 * n_seg - 1  # every output, and every tool result
    first = round(rng.uniform(*FIRST_PROMPT_FRACTION) * context)
    first = min(max(first, 1), context - others)
    pieces = split_tokens(context - first, jitter_weights(rng, others, PIECE_JITTER))
    # pieces: out_0, result_0, out_1, result_1, ..., out_k
    segments = []
    for i in range(n_seg):
        tool = None
        if i < calls:
            tool = ToolCall(kind.name, lognormal(rng, kind.tool_mean, kind.tool_sd))
        input_tokens = first if i == 0 else pieces[2 * i - 1]
        segments.append(Segment(input_tokens, pieces[2 * i], tool))
    return JobSpec(job_id=job_id, arrival=arrival, category=kind.name, segments=tuple(segments))


def generate_infercept(
    num_jobs: int,
    rate: float,
    rng: random.Random | int,
    *,
    categories: Sequence[str] | None = None,
) -> list[JobSpec]:
    """``num_jobs`` InferCept-mix jobs with Poisson arrivals at ``rate`` jobs/s.

    ``categories`` restricts the mix (default: all six types, equally likely).
    Deterministic for a seed; the jobs do not depend on ``rate``, only their arrivals do.
    """
    names = list(INFERCEPT_TYPES) if categories is None else list(categories)
    unknown = [c for c in names if c not in INFERCEPT_TYPES]
    if unknown or not names:
        raise ValueError(f"unknown InferCept categories {unknown}; valid: {list(INFERCEPT_TYPES)}")
    arrival_rng, job_rng = split_streams(as_rng(rng))
    arrivals = poisson_arrivals(num_jobs, rate, arrival_rng)
    return [
        infercept_job(job_rng, f"infercept-{i:06d}", t, INFERCEPT_TYPES[job_rng.choice(names)])
        for i, t in enumerate(arrivals)
    ]
