"""A coding-agent mix (SWE-agent / OpenHands on SWE-bench-style issues), as a generator.

Sources, and the numbers taken:

* nebius/SWE-rebench-openhands-trajectories (67,074 OpenHands v0.54 trajectories, Qwen3-Coder-
  480B, on Hugging Face), as summarised in ai-dynamo/aiperf issue #1019: **64.3 turns per
  session on average, at most 100**; the context at the deepest turn averages **~27k tokens**
  (up to 131k).
* SWE-Bench Pro trajectories run with SWE-agent (nilenso's public analysis of 2,920 .traj
  files, 4 models): median trajectory length 29-78 steps per model, so 64 is typical of
  current agents, not an outlier.
* Continuum (arXiv 2511.02230) measured SWE-bench agent tool times of **0.925 +- 3.55 s**
  (mean, sd): a heavy tail, because most commands (view a file, search, edit) return at once
  while running tests or a reproduction script takes seconds to minutes.

Not published, chosen here (and why):

* Calls (LLM turns) per job: lognormal with mean 64.3 and sd 30, clipped to [3, 100]
  (100 is the harness's turn cap; the clip lowers the mean to ~62).
* First prompt (system prompt, tool descriptions, the issue): lognormal (4000, 1500) tokens.
  Outputs (a thought and one command): lognormal (150, 120). Tool results (file views are
  long, edits and `ls` short): lognormal (210, 315), coefficient of variation 1.5. With these,
  the final context averages ~26k tokens, the published ~27k.
* Tool time: a two-kind mixture whose mean and sd come out near Continuum's 0.925 +- 3.55 s:
  10% of calls run tests or a script (tool ``run_tests``, lognormal (6.5, 11) s: median ~3 s,
  p99 ~50 s), the other 90% are shell/edit commands (tool ``shell``, lognormal (0.3, 0.3) s).
  Mixture mean ~0.92 s, sd ~4 s.
* A job stops early if its context would pass 131,072 tokens (the harness's context-overflow
  exit; rare at these means).

The contexts exceed Llama-2's 4k window: the mix stands for a long-context model served with
the profile's memory and speed, as the Continuum mix does.
"""

from __future__ import annotations

import random

from astraea.core.job import JobSpec, ToolCall
from astraea.workloads._chain import chain_job, clipped_int, generate_jobs
from astraea.workloads._dist import lognormal, lognormal_tokens

CATEGORY = "coding"
TURNS_MEAN, TURNS_SD, TURNS_MIN, TURNS_MAX = 64.3, 30.0, 3, 100
FIRST_PROMPT = (4000, 1500)
OUTPUT = (150, 120)
RESULT = (210, 315)
TEST_FRACTION = 0.1
TEST_TIME = (6.5, 11.0)  # run_tests: pytest / a reproduction script
SHELL_TIME = (0.3, 0.3)  # shell: view, search, edit, ls
MAX_CONTEXT = 131_072


def coding_job(rng: random.Random, job_id: str, arrival: float) -> JobSpec:
    """One coding-agent trajectory (see the module docstring for the recipe)."""
    turns = clipped_int(lognormal(rng, TURNS_MEAN, TURNS_SD), TURNS_MIN, TURNS_MAX)
    inputs = [lognormal_tokens(rng, *FIRST_PROMPT)]
    outputs = [lognormal_tokens(rng, *OUTPUT)]
    tools: list[ToolCall] = []
    context = inputs[0] + outputs[0]
    for _ in range(turns - 1):
        if rng.random() < TEST_FRACTION:
            tool = ToolCall("run_tests", lognormal(rng, *TEST_TIME))
        else:
            tool = ToolCall("shell", lognormal(rng, *SHELL_TIME))
        result, output = lognormal_tokens(rng, *RESULT), lognormal_tokens(rng, *OUTPUT)
        if context + result + output > MAX_CONTEXT:
            break
        tools.append(tool)
        inputs.append(result)
        outputs.append(output)
        context += result + output
    return chain_job(job_id, arrival, CATEGORY, inputs, outputs, tools)


def generate_coding(num_jobs: int, rate: float, rng: random.Random | int) -> list[JobSpec]:
    """``num_jobs`` coding-agent jobs with Poisson arrivals at ``rate`` jobs/s."""
    return generate_jobs("coding", num_jobs, rate, rng, coding_job)
