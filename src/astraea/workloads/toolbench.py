"""A ToolBench mix (ToolLLM's multi-step RapidAPI calls, DFSDT), as a generator.

Source: ToolLLM (Qin et al., "ToolLLM: Facilitating Large Language Models to Master 16000+
Real-world APIs", ICLR 2024) and its repository README (OpenBMB/ToolBench): **126,486
instances** with **469,585 real API calls** (3.71 per instance) and **4.0 reasoning traces
(steps) per solution path on average**; 16,464 REST APIs from RapidAPI. Solution paths were
searched with DFSDT, a depth-first decision tree: at a dead end the model calls
``give_up_and_restart`` and the search backs up to an earlier node. ToolLLaMA is LLaMA-2-7B
fine-tuned with an 8,192-token context.

Not published, chosen here (and why):

* API calls per job: 1 + Poisson(2.71) (mean 3.71, the published calls per instance); the
  job has one call more, the final answer (``Finish``), so ~4.7 LLM calls.
* DFSDT backtracking: each API step is, with probability 0.15, a ``backtrack`` instead (the
  framework reverts the tree; ~1 ms, no network). Our jobs are chains: a backtracked branch
  stays in the context, as DFSDT shows the failed siblings to the next expansion.
* First prompt (system prompt, the relevant APIs' JSON documents, the query): lognormal
  (2000, 700) tokens. Outputs (a thought and a function call): lognormal (90, 50). API
  responses (ToolBench truncates long ones): lognormal (350, 300) tokens; backtrack notes
  lognormal (30, 10).
* API latency: real RapidAPI endpoints over the internet, lognormal (1.2, 1.5) s (median
  ~0.8 s, a long tail of slow endpoints).

Final contexts average ~3.6k tokens.
"""

from __future__ import annotations

import math
import random

from astraea.core.job import JobSpec, ToolCall
from astraea.workloads._chain import chain_job, generate_jobs
from astraea.workloads._dist import lognormal, lognormal_tokens

CATEGORY = "toolbench"
API_CALLS_MEAN = 469_585 / 126_486  # 3.71
BACKTRACK_FRACTION = 0.15
FIRST_PROMPT, OUTPUT, RESPONSE, BACKTRACK_NOTE = (2000, 700), (90, 50), (350, 300), (30, 10)
API_TIME, BACKTRACK_TIME = (1.2, 1.5), 0.001


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's product of uniforms; fine for small means)."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def toolbench_job(rng: random.Random, job_id: str, arrival: float) -> JobSpec:
    """One ToolBench instance solved with DFSDT."""
    steps = 1 + poisson(rng, API_CALLS_MEAN - 1)
    inputs = [lognormal_tokens(rng, *FIRST_PROMPT)]
    tools = []
    for _ in range(steps):
        if rng.random() < BACKTRACK_FRACTION:
            tools.append(ToolCall("backtrack", BACKTRACK_TIME))
            inputs.append(lognormal_tokens(rng, *BACKTRACK_NOTE))
        else:
            tools.append(ToolCall("rapidapi", lognormal(rng, *API_TIME)))
            inputs.append(lognormal_tokens(rng, *RESPONSE))
    outputs = [lognormal_tokens(rng, *OUTPUT) for _ in range(steps + 1)]
    return chain_job(job_id, arrival, CATEGORY, inputs, outputs, tools)


def generate_toolbench(num_jobs: int, rate: float, rng: random.Random | int) -> list[JobSpec]:
    """``num_jobs`` ToolBench instances with Poisson arrivals at ``rate`` jobs/s."""
    return generate_jobs("toolbench", num_jobs, rate, rng, toolbench_job)
