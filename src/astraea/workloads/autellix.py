"""An Autellix-like multi-turn program mix, as a generator.

Source: Autellix (Luo et al., "Autellix: An Efficient Serving Engine for LLM Agents as
General Programs", arXiv 2502.13965), its workload statistics as restated in ASTRAEA.md
section 4 (mean LLM calls per program; mean prefill / decode tokens per call):

    ShareGPT multi-turn chat   6.66 calls    256 prefill / 277 decode
    BFCL function calling      10.75 calls   735 prefill / 34 decode
    LATS tree search           159.7 calls   467 prefill / 73 decode   (optional)

Only means are given; everything else below is our assumption, stated so it can be varied:

* "Prefill per call" is read as the *new* input tokens of each call (the user turn or the
  function result appended to the context), not the whole prompt: for ShareGPT the whole
  prompt cannot average 256 tokens when each answer adds 277. For BFCL this reading gives
  final contexts of ~8k tokens; if Autellix counted whole prompts, they would be shorter.
* Calls per program: 1 + Geometric, i.e. P(n) = p (1 - p)^(n-1) with p = 1 / mean, so the
  mean is the published one and lengths are skewed as conversation lengths are.
* Tokens per call: lognormal matched to the published mean, with coefficient of variation
  1.0 for ShareGPT (human text varies widely) and 0.5 for BFCL and LATS; at least 1 token.
* Time between calls (the segment's tool latency), lognormal with (mean, sd):
  ShareGPT user think time (5 s, 3 s); BFCL function execution (1 s, 0.5 s);
  LATS environment/search step (1 s, 1 s). The tool name is the category.
* LATS is a tree search (parallel branches); our jobs are chains, so it is modelled as
  a long sequential chain. It is left out of the default mix ("sharegpt", "bfcl").
* Category: uniform over the mix.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.workloads._dist import as_rng, lognormal, lognormal_tokens, split_streams
from astraea.workloads.arrivals import poisson_arrivals


@dataclass(frozen=True, slots=True)
class ProgramClass:
    """Per-class statistics: published means plus our documented spreads and gaps."""

    name: str
    calls_mean: float
    prefill_mean: float
    decode_mean: float
    token_cv: float
    gap_mean: float
    gap_sd: float


AUTELLIX_CLASSES: dict[str, ProgramClass] = {
    c.name: c
    for c in (
        ProgramClass("sharegpt", 6.66, 256, 277, 1.0, 5.0, 3.0),
        ProgramClass("bfcl", 10.75, 735, 34, 0.5, 1.0, 0.5),
        ProgramClass("lats", 159.7, 467, 73, 0.5, 1.0, 1.0),
    )
}
DEFAULT_MIX = ("sharegpt", "bfcl")


def geometric_calls(rng: random.Random, mean: float) -> int:
    """1 + Geometric: at least one call, mean ``mean``."""
    if mean <= 1:
        return 1
    p = 1.0 / mean
    u = 1.0 - rng.random()  # in (0, 1]
    return 1 + math.floor(math.log(u) / math.log1p(-p))


def autellix_job(rng: random.Random, job_id: str, arrival: float, cls: ProgramClass) -> JobSpec:
    """One program of class ``cls`` as a chain of calls."""
    calls = geometric_calls(rng, cls.calls_mean)
    segments = []
    for i in range(calls):
        new_input = lognormal_tokens(rng, cls.prefill_mean, cls.token_cv * cls.prefill_mean)
        output = lognormal_tokens(rng, cls.decode_mean, cls.token_cv * cls.decode_mean)
        tool = None
        if i < calls - 1:
            tool = ToolCall(cls.name, lognormal(rng, cls.gap_mean, cls.gap_sd))
        segments.append(Segment(new_input, output, tool))
    return JobSpec(job_id=job_id, arrival=arrival, category=cls.name, segments=tuple(segments))


def generate_autellix(
    num_jobs: int,
    rate: float,
    rng: random.Random | int,
    *,
    categories: Sequence[str] = DEFAULT_MIX,
) -> list[JobSpec]:
    """``num_jobs`` Autellix-like programs with Poisson arrivals at ``rate`` jobs/s."""
    names = list(categories)
    unknown = [c for c in names if c not in AUTELLIX_CLASSES]
    if unknown or not names:
        raise ValueError(f"unknown Autellix categories {unknown}; valid: {list(AUTELLIX_CLASSES)}")
    arrival_rng, job_rng = split_streams(as_rng(rng))
    arrivals = poisson_arrivals(num_jobs, rate, arrival_rng)
    return [
        autellix_job(job_rng, f"autellix-{i:06d}", t, AUTELLIX_CLASSES[job_rng.choice(names)])
        for i, t in enumerate(arrivals)
    ]
