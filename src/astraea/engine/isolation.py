"""One call's failure stays that call's: find which sequence of a step failed, run the rest.

A batched forward pass or sampler that raises says nothing about which call caused it. When
it does, the step is retried one sequence (or one row) at a time: the ones that fail again
are the culprits and are ended alone, the others go on with the logits and tokens they got.
Writing the same KV slots a second time is harmless (same inputs, same values), and the
retries carry no block copies (a failed copy is the step's failure, ``CopyError``). When
every sequence fails on its own too, each is still ended alone and the step counts as
failed (``StepFailed``): the engine thread counts such steps in a row to tell a broken
engine from a bad call (``/health``). A call's grammar advances only once its token is
drawn, so a row that fails leaves its matcher as it was (and the call ends anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from astraea.core.plan import StepPlan
from astraea.engine.logits import process_row, raw_logprobs, record_logprob
from astraea.engine.runner import CopyError, ModelRunner
from astraea.engine.sampling import Request, ban_tokens, sample

__all__ = ["CopyError", "StepFailed", "compute_isolated", "sample_isolated"]


class StepFailed(RuntimeError):
    """A step that failed as a whole (its KV copies, or every sequence it ran): ``requests``
    are the calls it ended, each with its ``error`` set."""

    def __init__(self, requests: list[Request], cause: BaseException) -> None:
        super().__init__(f"the engine step failed: {cause}")
        self.requests, self.cause = requests, cause


def compute_isolated(
    runner: ModelRunner,
    plan: StepPlan,
    tokens: Mapping[str, Sequence[int]],
    step: int,
    failed: dict[str, BaseException],
) -> tuple[list[str], torch.Tensor]:
    """``runner.compute_logits`` for the plan; if it raises, again per sequence: the jobs
    whose sequence fails alone go into ``failed``, the logits of the others come back."""
    try:
        return runner.compute_logits(plan, tokens, step)
    except CopyError:
        raise
    except Exception:
        pass
    jobs: list[str] = []
    parts: list[torch.Tensor] = []
    for seq in plan.seqs:
        alone = StepPlan(seqs=[seq], num_steps=plan.num_steps)  # no copies: they are done
        try:
            got, logits = runner.compute_logits(alone, tokens, step)
        except Exception as exc:
            failed[seq.job_id] = exc
            continue
        jobs.extend(got)
        parts.append(logits)
    if not parts:
        return [], torch.empty(0, runner.model.config.vocab_size)
    return jobs, torch.cat(parts)


def sample_isolated(
    requests: Sequence[Request],
    logits: torch.Tensor,
    eos_ids: frozenset[int],
    decode: Callable[[list[int]], str] | None,
    failed: dict[str, BaseException],
) -> list[tuple[Request, int, bool]]:
    """Sample one token per request and record it (grammar, logprobs, ``Request.observe``):
    (request, token, whether it stopped the call). A row whose processing fails (a grammar
    that allows nothing) is left out; a batch draw that raises is redone row by row;
    requests whose draw or bookkeeping fails go into ``failed`` and are left out (they are
    ended, so what they recorded does not matter)."""
    raw = raw_logprobs(logits, requests)
    live: list[int] = []
    for row, req in enumerate(requests):
        try:
            if len(req.token_ids) < req.params.min_tokens:
                ban_tokens(logits, row, eos_ids)
            process_row(logits, row, req)
        except Exception as exc:
            failed[req.job_id] = exc
            continue
        live.append(row)
    if len(live) < len(requests):
        requests = [requests[row] for row in live]
        raw = {i: raw[row] for i, row in enumerate(live) if row in raw}
        logits = logits[live]
    params, generators = [r.params for r in requests], [r.generator for r in requests]
    try:
        tokens: list[int | None] = list(sample(logits, params, generators))
    except Exception:
        tokens = []
        for row, req in enumerate(requests):
            try:
                tokens.append(sample(logits[row : row + 1], [params[row]], [generators[row]])[0])
            except Exception as exc:
                failed[req.job_id] = exc
                tokens.append(None)
    out: list[tuple[Request, int, bool]] = []
    for row, (req, token) in enumerate(zip(requests, tokens, strict=True)):
        if token is None:
            continue
        try:
            if req.matcher is not None:
                req.matcher.accept(token)
            if row in raw:
                record_logprob(req, raw[row], token)
            out.append((req, token, req.observe(token, eos_ids, decode)))
        except Exception as exc:
            failed[req.job_id] = exc
    return out
