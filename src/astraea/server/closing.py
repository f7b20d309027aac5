"""Structured answers that end inside ``max_tokens``: a short completion of the grammar is
written once the budget left would soon be too short for it.

A constrained answer that runs into ``max_tokens`` is cut mid-structure (an unterminated
string, an open array): the client gets text that does not parse although every token was
allowed. Small models do this often: greedy decoding loops inside a string or an array
("soccer", "soccer", ...) until the budget ends, and no grammar can forbid a loop whose text
is a valid prefix. So each constrained call also knows its budget: from ``CLOSE_HORIZON``
tokens before the end, each step looks for a short completion of the grammar from where the
answer is (``Closer.shortest``). While more than ``CLOSE_MARGIN`` tokens are to spare the
model chooses freely; within the margin only those of its ``CLOSE_CANDIDATES`` likeliest
tokens are kept after which a completion still fits; with no token to spare the rest of the
answer is the completion, token by token, then EOS. An answer that fits ends as the model
writes it; one that would not is ended inside the user's grammar (every token is one the
grammar allows), and its ``finish_reason`` is ``length`` when the budget overrode the
model's own choice (greedy: its arg-max).

The search is greedy over one-character tokens, guided by a scan of the JSON written so far:
inside a string its closing quote is tried first, inside an array or object its closing
bracket, then separators and the shortest values (``0``, ``""``, ...); text the grammar
forces (keys of a closed object, ``</tool_call>``) is taken whole. It is made for JSON
(schemas, tool calls); for a regex or a grammar it may find nothing within the budget, and
the answer is then cut as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

CLOSE_HORIZON = 64  # tokens before max_tokens from which a completion is looked for
CLOSE_MARGIN = 8  # with this many tokens to spare or fewer, each token kept is checked
CLOSE_CANDIDATES = 8  # the model's likeliest tokens checked then (the others are dropped)
# one-character tokens tried after the closer of the current context: the end of a value
# first (where a value is due, JSON with fixed separators allows none of them), then the
# shortest values, then anything else printable
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORDER = ',]}0"tfn[{123456789-.: ' + _LETTERS
_IN_STRING = _LETTERS + "0123456789 "  # text for a string that must be longer


class JsonScan:
    """Where a text is in JSON: inside a string or not, and the open brackets."""

    __slots__ = ("escaped", "in_string", "stack")

    def __init__(self) -> None:
        self.in_string, self.escaped, self.stack = False, False, []

    def copy(self) -> JsonScan:
        out = JsonScan()
        out.in_string, out.escaped, out.stack = self.in_string, self.escaped, list(self.stack)
        return out

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif byte == 0x5C:  # backslash
                    self.escaped = True
                elif byte == 0x22:
                    self.in_string = False
            elif byte == 0x22:
                self.in_string = True
            elif byte in (0x7B, 0x5B):  # { [
                self.stack.append(byte)
            elif byte in (0x7D, 0x5D) and self.stack:  # } ]
                self.stack.pop()

    def closer(self) -> str | None:
        if self.in_string:
            return '"'
        if self.stack:
            return "}" if self.stack[-1] == 0x7B else "]"
        return None


def _allowed(bits: bytes, token: int) -> bool:
    """Bit ``token`` of a packed little-endian bitmask."""
    return token >> 3 < len(bits) and bool(bits[token >> 3] >> (token & 7) & 1)


class Closer:
    """Finds short completions of grammars over one tokenizer (llguidance's ``LLTokenizer``)."""

    def __init__(self, tokenizer: Any, eos_ids: Sequence[int]) -> None:
        self.tokenizer, self.eos_ids = tokenizer, sorted(eos_ids)
        self.char_ids: dict[str, int] = {}
        for code in range(32, 127):
            ids = tokenizer.tokenize_str(chr(code))
            if len(ids) == 1:
                self.char_ids[chr(code)] = ids[0]
        self._order = [self.char_ids[c] for c in _ORDER if c in self.char_ids]
        self._in_string = [self.char_ids[c] for c in _IN_STRING if c in self.char_ids]
        self._chars = {t: c.encode() for c, t in self.char_ids.items()}

    def shortest(self, matcher: Any, generated: Sequence[int], limit: int) -> list[int] | None:
        """Tokens (EOS last) that complete ``matcher``'s grammar from its state, at most
        ``limit`` of them, or None when none is found. ``generated`` is what the matcher
        has accepted (its text guides the search); the matcher itself is left as it was."""
        m = matcher.deep_copy()
        scan = JsonScan()
        scan.feed(self.tokenizer.decode_bytes(list(generated)))
        path: list[int] = []
        while len(path) < limit:
            if m.is_accepting():
                bits = m.compute_bitmask()
                eos = next((e for e in self.eos_ids if _allowed(bits, e)), None)
                if eos is not None:
                    return [*path, eos]
            if m.is_error() or m.is_stopped():
                return None
            forced = m.compute_ff_tokens()
            if forced:
                if not m.consume_tokens(forced):
                    return None
                path.extend(forced)
                scan.feed(self.tokenizer.decode_bytes(forced))
                continue
            token = self._pick(m.compute_bitmask(), scan)
            if token is None or not m.consume_token(token):
                return None
            path.append(token)
            scan.feed(self._chars.get(token) or self.tokenizer.decode_bytes([token]))
        return None

    def _pick(self, bits: bytes, scan: JsonScan) -> int | None:
        closer = scan.closer()
        if closer is not None:
            token = self.char_ids.get(closer)
            if token is not None and _allowed(bits, token):
                return token
        for token in self._in_string if scan.in_string else self._order:
            if _allowed(bits, token):
                return token
        for token in self._order:
            if _allowed(bits, token):
                return token
        eos = set(self.eos_ids)
        for index, byte in enumerate(bits):  # anything the grammar allows (rare)
            if byte:
                for bit in range(8):
                    token = index * 8 + bit
                    if byte >> bit & 1 and token not in eos:
                        return token
        return None


class Budget:
    """One call's closing state: its token budget and the completion being written."""

    __slots__ = ("closed", "closer", "max_tokens", "plan", "tokens", "until_whole", "whole")

    def __init__(self, closer: Closer, max_tokens: int, until_whole: bool = False) -> None:
        self.closer, self.max_tokens = closer, max_tokens
        self.tokens: list[int] = []  # accepted so far
        self.plan: list[int] = []  # the completion being written
        self.closed = False  # the budget overrode the model's own (arg-max) choice
        # stop closing once the answer has been whole (parallel tool calls: a call the
        # budget cuts after whole ones is dropped by the parser, better than one finished
        # by the closer)
        self.until_whole, self.whole = until_whole, False

    def restrict(self, matcher: Any, row: torch.Tensor) -> None:
        """Narrow ``row`` (already masked by the grammar) to the tokens after which the
        grammar can still be completed inside the budget."""
        if self.plan:
            self._only(row, [self.plan[0]])
            return
        left = self.max_tokens - len(self.tokens)
        if left > CLOSE_HORIZON or self.whole:
            return
        path = self.closer.shortest(matcher, self.tokens, left)
        if path is None:  # no completion fits: the answer will be cut, as without us
            return
        if len(path) >= left:  # not one token to spare: write the completion
            self.plan = path
            self._only(row, [path[0]])
            return
        if left - len(path) > CLOSE_MARGIN:
            return
        # A few tokens to spare: keep the model's likeliest tokens that leave a completion
        # short enough for what is left after them (the completion's first token always does).
        keep = [path[0]]
        finite = int(torch.isfinite(row).sum())
        for token in row.topk(min(CLOSE_CANDIDATES, finite)).indices.tolist():
            if token == path[0]:
                continue
            after = matcher.deep_copy()
            if not after.consume_token(token):
                continue
            if after.is_accepting() or self.closer.shortest(after, [*self.tokens, token], left - 1):
                keep.append(token)
        self._only(row, keep)

    def _only(self, row: torch.Tensor, keep: list[int]) -> None:
        if int(row.argmax()) not in keep:
            self.closed = True
        kept = row[keep].clone()
        row.fill_(-math.inf)
        row[keep] = torch.where(torch.isfinite(kept), kept, torch.zeros_like(kept))

    def accepted(self, token: int, matcher: Any) -> None:
        self.tokens.append(token)
        if self.until_whole and not self.plan and matcher.is_accepting():
            self.whole = True
        if self.plan:
            if token == self.plan[0]:
                self.plan.pop(0)
            else:  # pragma: no cover - the row allowed only the planned token
                self.plan = []
