"""What happens to one call's row of logits before its token is drawn, and what is kept after.

Order (vLLM's): the model's raw distribution is read for logprobs first; then EOS is banned
below ``min_tokens``, ``logit_bias`` is added, the penalties are applied over the tokens seen,
and the grammar (structured outputs) masks what it forbids; temperature, ``min_p``, ``top_k``
and ``top_p`` follow in the draw (``sampling.sample``). Rows that ask for none of this cost
nothing: each step looks only at the rows that do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from astraea.engine.sampling import Request, SamplingParams, TokenLogprob


def raw_logprobs(logits: torch.Tensor, requests: Sequence[Request]) -> dict[int, torch.Tensor]:
    """Log-softmax of the rows that want logprobs, read before anything changes the logits."""
    rows = [i for i, r in enumerate(requests) if r.params.logprobs is not None]
    if not rows:
        return {}
    lp = torch.log_softmax(logits[rows].float(), dim=-1)
    return {row: lp[i] for i, row in enumerate(rows)}


def record_logprob(request: Request, row_logprobs: torch.Tensor, token: int) -> None:
    """Keep the drawn token's log-probability and the ``logprobs`` most likely tokens'."""
    k = request.params.logprobs or 0
    top: tuple[tuple[int, float], ...] = ()
    if k:
        values, ids = row_logprobs.topk(k)
        top = tuple(zip(ids.tolist(), values.tolist(), strict=True))
    assert request.logprobs is not None
    request.logprobs.append(TokenLogprob(token, float(row_logprobs[token]), top))


def process_row(logits: torch.Tensor, row: int, request: Request) -> None:
    """Bias, penalties and the grammar's mask, in place on ``logits[row]``."""
    params = request.params
    if params.logit_bias:
        ids = torch.tensor([i for i, _ in params.logit_bias], dtype=torch.long)
        ids_ok = ids < logits.shape[1]
        bias = torch.tensor([b for _, b in params.logit_bias], dtype=logits.dtype)
        logits[row].index_add_(0, ids[ids_ok], bias[ids_ok])
    if params.penalized:
        apply_penalties(logits[row], params, request.token_ids)
    if request.matcher is not None:
        request.matcher.mask(logits[row])
        if not bool(torch.isfinite(logits[row]).any()):
            raise ValueError("the grammar allows no token the model can produce here")


def apply_penalties(row: torch.Tensor, params: SamplingParams, output: Sequence[int]) -> None:
    """vLLM's definitions: ``repetition_penalty`` divides the positive logits (multiplies the
    negative ones) of every token in the prompt or the output; ``frequency_penalty`` subtracts
    once per occurrence in the output, ``presence_penalty`` once if it occurs at all."""
    vocab = row.shape[0]
    counts = torch.zeros(vocab, dtype=row.dtype)
    if output:
        out = torch.tensor(output, dtype=torch.long)
        out = out[out < vocab]
        counts.index_add_(0, out, torch.ones(out.numel(), dtype=row.dtype))
    if params.repetition_penalty != 1.0:
        seen = counts > 0
        if params.prompt_ids:
            prompt = torch.tensor(params.prompt_ids, dtype=torch.long)
            seen[prompt[prompt < vocab]] = True
        penalty = params.repetition_penalty
        scaled = torch.where(row > 0, row / penalty, row * penalty)
        big = torch.finfo(row.dtype).max / 2  # a tiny penalty must not overflow to inf
        scaled = scaled.nan_to_num(nan=-math.inf, posinf=big, neginf=-math.inf).clamp(min=-big)
        row.copy_(torch.where(seen, scaled, row))
    if params.frequency_penalty:
        row.sub_(params.frequency_penalty * counts)
    if params.presence_penalty:
        row.sub_(params.presence_penalty * (counts > 0).to(row.dtype))


def bitmask_to_bool(bitmask: torch.Tensor, vocab: int) -> torch.Tensor:
    """A packed int32 bitmask (bit ``i % 32`` of word ``i // 32`` allows token ``i``, the
    layout grammar libraries share) as one bool per token of a ``vocab``-wide row."""
    shifts = torch.arange(32, dtype=torch.int32)
    bits = (bitmask.unsqueeze(-1) >> shifts) & 1
    allowed = bits.reshape(-1).bool()
    if allowed.numel() < vocab:  # tokens past the grammar's vocabulary are never allowed
        allowed = torch.cat([allowed, torch.zeros(vocab - allowed.numel(), dtype=torch.bool)])
    return allowed[:vocab]


def mask_row(row: torch.Tensor, bitmask: torch.Tensor) -> None:
    """Forbid (``-inf``) every token of ``row`` whose bit is clear."""
    row.masked_fill_(~bitmask_to_bool(bitmask, row.shape[0]), -math.inf)
