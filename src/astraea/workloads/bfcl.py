"""A function-calling mix (Berkeley Function Calling Leaderboard), as a generator: short
jobs, short outputs, fast tools.

Sources, and the numbers taken:

* BFCL V3 (Gorilla project, "BFCL V3: Introducing Multi-Turn & Multi-Step Function Calling",
  gorilla.cs.berkeley.edu blog 13, and the ICML 2025 BFCL paper): the test bank holds
  ~4,951 cases, of which **1,000 are multi-turn / multi-step** (~20%); the rest are
  single-turn (simple, multiple, parallel, parallel-multiple; non-live and live): one
  model call that emits one or several function calls. Multi-turn tools are in-process
  Python API simulators (file system, trading bot, travel booking, vehicle control),
  checked by their resulting state.
* Autellix (arXiv 2502.13965), its BFCL workload: **10.75 calls per program**, **34 decode
  tokens per call** (the multi-turn programs).

Not published, chosen here (and why):

* Kind: multi-turn with probability 0.2 (BFCL V3's share), else single-turn.
* Single-turn: 2 calls. The first reads the question and the function documents, lognormal
  (400, 250) tokens, and writes the call(s), lognormal (40, 25); the tool (``exec``: an
  executable or REST function) takes lognormal (0.3, 0.3) s and returns lognormal (60, 40)
  tokens; the second call writes the answer, lognormal (50, 40).
* Multi-turn: 1 + Geometric calls with mean 10.75 (Autellix). First prompt (the API classes'
  documents and the first user turn): lognormal (1200, 400). Each later call appends a
  function result or the next scripted user turn, lognormal (100, 80), and writes lognormal
  (34, 20) tokens (Autellix's 34). Tools (``api_sim``) run in process: lognormal
  (0.02, 0.02) s.

Autellix reads "735 prefill tokens per call" for BFCL; we do not use it (its ``bfcl`` class
does, in the tuning set): here the first prompt carries the documents once and later calls
append only what is new, so contexts stay ~2.5k tokens.
"""

from __future__ import annotations

import random

from astraea.core.job import JobSpec, ToolCall
from astraea.workloads._chain import chain_job, generate_jobs
from astraea.workloads._dist import lognormal, lognormal_tokens
from astraea.workloads.autellix import geometric_calls

MULTI_TURN_FRACTION = 0.2
SINGLE_PROMPT, SINGLE_CALL, SINGLE_RESULT, SINGLE_ANSWER = (400, 250), (40, 25), (60, 40), (50, 40)
EXEC_TIME = (0.3, 0.3)
MULTI_CALLS = 10.75
MULTI_PROMPT, MULTI_INPUT, MULTI_OUTPUT = (1200, 400), (100, 80), (34, 20)
API_SIM_TIME = (0.02, 0.02)


def bfcl_job(rng: random.Random, job_id: str, arrival: float) -> JobSpec:
    """One BFCL case: single-turn (2 calls) or multi-turn (~10.75 calls)."""
    if rng.random() < MULTI_TURN_FRACTION:
        calls = geometric_calls(rng, MULTI_CALLS)
        inputs = [lognormal_tokens(rng, *MULTI_PROMPT)]
        inputs += [lognormal_tokens(rng, *MULTI_INPUT) for _ in range(calls - 1)]
        outputs = [lognormal_tokens(rng, *MULTI_OUTPUT) for _ in range(calls)]
        tools = [ToolCall("api_sim", lognormal(rng, *API_SIM_TIME)) for _ in range(calls - 1)]
        return chain_job(job_id, arrival, "bfcl_multi", inputs, outputs, tools)
    inputs = [lognormal_tokens(rng, *SINGLE_PROMPT), lognormal_tokens(rng, *SINGLE_RESULT)]
    outputs = [lognormal_tokens(rng, *SINGLE_CALL), lognormal_tokens(rng, *SINGLE_ANSWER)]
    tools = [ToolCall("exec", lognormal(rng, *EXEC_TIME))]
    return chain_job(job_id, arrival, "bfcl_single", inputs, outputs, tools)


def generate_bfcl(num_jobs: int, rate: float, rng: random.Random | int) -> list[JobSpec]:
    """``num_jobs`` BFCL cases with Poisson arrivals at ``rate`` jobs/s."""
    return generate_jobs("bfcl", num_jobs, rate, rng, bfcl_job)
