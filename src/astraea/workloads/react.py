"""ReAct over Wikipedia search (HotpotQA), as a generator: few calls, short tools.

Source: ReAct (Yao et al., "ReAct: Synergizing Reasoning and Acting in Language Models",
ICLR 2023), section 3 and its HotpotQA prompt: the action space is ``Search[entity]`` (returns
the first paragraph / first 5 sentences of the Wikipedia page, or similar titles),
``Lookup[keyword]`` (the next sentence containing the keyword in the current page) and
``Finish[answer]``; the prompt holds 6 few-shot trajectories; runs are cut at **7 steps** on
HotpotQA (more steps did not help). The example trajectories in the paper take 3-5 steps.

Not published, chosen here (and why):

* Calls per job (one Thought + Action each; the last is ``Finish``): P(2..7) =
  0.10, 0.30, 0.25, 0.15, 0.10, 0.10 (mean 4.15): most multi-hop questions need two searches
  and a finish, some wander to the 7-step cap.
* First prompt: 1650 tokens of instruction and six exemplars (fixed) plus the question,
  lognormal (50, 25). Outputs: lognormal (45, 20) tokens (a one-sentence thought and an action).
* Each non-final action is a ``search`` with probability 0.75, else a ``lookup``. Search:
  a network round trip to the Wikipedia API, lognormal (1.5, 0.7) s (the 1-3 s of a web
  search), returning lognormal (130, 60) tokens. Lookup reads the page already fetched:
  lognormal (0.05, 0.03) s, lognormal (35, 15) tokens.

Final contexts average ~2.3k tokens, inside Llama-2's 4k window.
"""

from __future__ import annotations

import random

from astraea.core.job import JobSpec, ToolCall
from astraea.workloads._chain import chain_job, generate_jobs
from astraea.workloads._dist import lognormal, lognormal_tokens

CATEGORY = "react"
CALLS_PMF: dict[int, float] = {2: 0.10, 3: 0.30, 4: 0.25, 5: 0.15, 6: 0.10, 7: 0.10}
MAX_STEPS = 7
EXEMPLAR_TOKENS = 1650
QUESTION = (50, 25)
OUTPUT = (45, 20)
SEARCH_FRACTION = 0.75
SEARCH_TIME, SEARCH_RESULT = (1.5, 0.7), (130, 60)
LOOKUP_TIME, LOOKUP_RESULT = (0.05, 0.03), (35, 15)


def react_job(rng: random.Random, job_id: str, arrival: float) -> JobSpec:
    """One ReAct question-answering run."""
    calls = rng.choices(list(CALLS_PMF), weights=list(CALLS_PMF.values()))[0]
    inputs = [EXEMPLAR_TOKENS + lognormal_tokens(rng, *QUESTION)]
    tools = []
    for _ in range(calls - 1):
        if rng.random() < SEARCH_FRACTION:
            tools.append(ToolCall("search", lognormal(rng, *SEARCH_TIME)))
            inputs.append(lognormal_tokens(rng, *SEARCH_RESULT))
        else:
            tools.append(ToolCall("lookup", lognormal(rng, *LOOKUP_TIME)))
            inputs.append(lognormal_tokens(rng, *LOOKUP_RESULT))
    outputs = [lognormal_tokens(rng, *OUTPUT) for _ in range(calls)]
    return chain_job(job_id, arrival, CATEGORY, inputs, outputs, tools)


def generate_react(num_jobs: int, rate: float, rng: random.Random | int) -> list[JobSpec]:
    """``num_jobs`` ReAct/HotpotQA runs with Poisson arrivals at ``rate`` jobs/s."""
    return generate_jobs("react", num_jobs, rate, rng, react_job)
