"""A multi-turn chat mix (ShareGPT shapes), as a generator: the human's think time between
turns is the "tool".

Sources, and the numbers taken:

* ShareChat (Yan et al., arXiv 2512.17843), Table 1, ShareGPT row: **94,145 conversations,
  330,239 turns: 3.51 turns per conversation**.
* Autellix (arXiv 2502.13965), its ShareGPT workload: **256 prefill / 277 decode tokens per
  call** (read, as its module does, as the new user turn and the answer).
* InferCept (ICML 2024), its chatbot augmentation: the interception (the human's reply) takes
  **28.6 +- 15.6 s** (mean, sd). ShareGPT has no timestamps, so this is the think time we use.

Not published, chosen here (and why):

* Turns: 1 + Geometric with mean 3.51 (conversation lengths are skewed: many one-shot
  questions, a long tail of long chats). A one-turn conversation calls no tool.
* Tokens: lognormal with coefficient of variation 1.0 around 256 (user) and 277 (answer):
  human text varies widely.
* Think time: lognormal matched to InferCept's (28.6, 15.6) s; tool name ``user``.

Contexts average ~1.9k tokens: short jobs that sit idle for half a minute between calls.
"""

from __future__ import annotations

import random

from astraea.core.job import JobSpec, ToolCall
from astraea.workloads._chain import chain_job, generate_jobs
from astraea.workloads._dist import lognormal, lognormal_tokens
from astraea.workloads.autellix import geometric_calls

CATEGORY = "chat"
TURNS_MEAN = 330_239 / 94_145  # 3.51
USER_TOKENS, ANSWER_TOKENS, TOKEN_CV = 256, 277, 1.0
THINK_TIME = (28.6, 15.6)


def chat_job(rng: random.Random, job_id: str, arrival: float) -> JobSpec:
    """One conversation."""
    turns = geometric_calls(rng, TURNS_MEAN)
    inputs = [lognormal_tokens(rng, USER_TOKENS, TOKEN_CV * USER_TOKENS) for _ in range(turns)]
    outputs = [lognormal_tokens(rng, ANSWER_TOKENS, TOKEN_CV * ANSWER_TOKENS) for _ in range(turns)]
    tools = [ToolCall("user", lognormal(rng, *THINK_TIME)) for _ in range(turns - 1)]
    return chain_job(job_id, arrival, CATEGORY, inputs, outputs, tools)


def generate_chat(num_jobs: int, rate: float, rng: random.Random | int) -> list[JobSpec]:
    """``num_jobs`` conversations with Poisson arrivals at ``rate`` jobs/s."""
    return generate_jobs("chat", num_jobs, rate, rng, chat_job)
