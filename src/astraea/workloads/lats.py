"""A LATS tree-search mix (Language Agent Tree Search), as a generator: many short calls
with almost no wait between them.

Sources, and the numbers taken:

* Autellix (arXiv 2502.13965), its LATS workload: **159.7 LLM calls per program**, **467
  prefill / 73 decode tokens per call**.
* LATS (Zhou et al., ICML 2024): Monte-Carlo tree search whose every iteration selects a
  node, expands n children (n = 5 in the paper's HotpotQA runs; sampled together), runs the
  environment action of each child, scores each with an LLM value call, and backs up.

Not published, chosen here (and why):

* Calls per job: 1 + Geometric with mean 159.7 (as Autellix's ``lats`` class), clipped at
  500 to bound the context.
* The tree as a chain. LATS's calls form a tree and each call's prompt is the task plus the
  path to its node; our jobs append to one context. We take Autellix's 467 prompt tokens once,
  as the first prompt (lognormal, sd 140), and let each later call append only what is new to
  it, lognormal (40, 30) tokens (a child's observation or a value prompt's delta); outputs
  lognormal (73, 36) (Autellix's 73, cv 0.5). Compute is close to a prefix-cached tree;
  memory is overstated late in a job (~19k tokens on average at the end, where a tree path
  stays ~1-2k).
* Gaps between calls: half are environment steps (tool ``tree_env``; the 5 children's
  Wikipedia calls run in parallel, so each call waits ~a fifth of a search:
  lognormal (0.3, 0.3) s), half are value or expansion calls that follow at once
  (tool ``tree_value``, lognormal (0.005, 0.003) s of framework overhead).

This differs from the Autellix mix's ``lats`` class (467 new tokens per call, 1 s gaps),
which is in the tuning set.
"""

from __future__ import annotations

import random

from astraea.core.job import JobSpec, ToolCall
from astraea.workloads._chain import chain_job, generate_jobs
from astraea.workloads._dist import lognormal, lognormal_tokens
from astraea.workloads.autellix import geometric_calls

CATEGORY = "lats"
CALLS_MEAN, CALLS_MAX = 159.7, 500
FIRST_PROMPT, NEW_INPUT, OUTPUT = (467, 140), (40, 30), (73, 36)
ENV_FRACTION = 0.5
ENV_TIME, VALUE_TIME = (0.3, 0.3), (0.005, 0.003)


def lats_job(rng: random.Random, job_id: str, arrival: float) -> JobSpec:
    """One LATS program as a chain of calls."""
    calls = min(geometric_calls(rng, CALLS_MEAN), CALLS_MAX)
    inputs = [lognormal_tokens(rng, *FIRST_PROMPT)]
    inputs += [lognormal_tokens(rng, *NEW_INPUT) for _ in range(calls - 1)]
    outputs = [lognormal_tokens(rng, *OUTPUT) for _ in range(calls)]
    tools = [
        ToolCall("tree_env", lognormal(rng, *ENV_TIME))
        if rng.random() < ENV_FRACTION
        else ToolCall("tree_value", lognormal(rng, *VALUE_TIME))
        for _ in range(calls - 1)
    ]
    return chain_job(job_id, arrival, CATEGORY, inputs, outputs, tools)


def generate_lats(num_jobs: int, rate: float, rng: random.Random | int) -> list[JobSpec]:
    """``num_jobs`` LATS programs with Poisson arrivals at ``rate`` jobs/s."""
    return generate_jobs("lats", num_jobs, rate, rng, lats_job)
