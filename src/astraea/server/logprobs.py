"""Logprobs in OpenAI's two shapes: chat's ``{"content": [{token, logprob, bytes,
top_logprobs}]}`` and the legacy completions' parallel lists (``tokens``, ``token_logprobs``,
``top_logprobs``, ``text_offset``). Values come from the model's raw distribution
(``engine/logits.py``); a token is its own bytes, so one holding part of a UTF-8 character
has ``bytes`` that are not valid text alone (its ``token`` shows the replacement character).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from astraea.engine.sampling import TokenLogprob
from astraea.engine.tokenizer import Tokenizer


def _piece(tokenizer: Tokenizer, token_id: int) -> tuple[str, list[int]]:
    raw = tokenizer.token_bytes(token_id)
    return raw.decode("utf-8", errors="replace"), list(raw)


def chat_logprobs(tokenizer: Tokenizer, entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    content = []
    for entry in entries:
        token, raw = _piece(tokenizer, entry.token_id)
        top = []
        for tid, lp in entry.top:
            alt, alt_raw = _piece(tokenizer, tid)
            top.append({"token": alt, "logprob": lp, "bytes": alt_raw})
        content.append(
            {"token": token, "logprob": entry.logprob, "bytes": raw, "top_logprobs": top}
        )
    return {"content": content, "refusal": None}


def completion_logprobs(
    tokenizer: Tokenizer, entries: Sequence[TokenLogprob], offset: int = 0
) -> dict[str, Any]:
    """``offset``: where the first token's text starts in the choice's whole text."""
    tokens, values, tops, offsets = [], [], [], []
    for entry in entries:
        token, _ = _piece(tokenizer, entry.token_id)
        tokens.append(token)
        values.append(entry.logprob)
        tops.append({_piece(tokenizer, t)[0]: lp for t, lp in entry.top} or {token: entry.logprob})
        offsets.append(offset)
        offset += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops,
        "text_offset": offsets,
    }
