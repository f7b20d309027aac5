"""Structured outputs with llguidance: JSON schemas, regexes, choices and tool calls as grammars.

llguidance (chosen over xgrammar by measured per-token cost on this CPU, and because it needs
no torch or triton: benchmarks/structured_overhead.py) computes, for each step, the packed
bitmask of the tokens its grammar allows; ``LLGuidanceMatcher`` turns it into ``-inf`` logits
(``engine/logits.py``) and advances with each token drawn. Grammars are compiled and checked
on the request thread, so a bad schema is a 400 before the engine sees the call.

JSON is written with fixed separators (``", "``, ``": "``, no other whitespace): what a small
model writes anyway, and no room to loop on blank lines until ``max_tokens``. A forced tool
call continues the text the prompt already ends with (``ChatTemplate.forced_prefix``), in the
hermes format ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from astraea.engine.logits import mask_row
from astraea.server.closing import Budget, Closer
from astraea.server.errors import APIError

try:  # an optional dependency (the `server` extra installs it)
    import llguidance
except ImportError:  # pragma: no cover - exercised only without the extra
    llguidance = None

JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
CALL_END = "\n</tool_call>"


def available() -> bool:
    return llguidance is not None


class LLGuidanceMatcher:
    """One call's grammar state (``engine.sampling.TokenMatcher``); with a ``Budget`` it
    ends the answer with the grammar's completion before ``max_tokens`` (server/closing.py)."""

    def __init__(self, matcher: Any, words: int, budget: Budget | None = None) -> None:
        self.matcher, self.budget = matcher, budget
        self.bitmask = torch.empty(words, dtype=torch.int32)

    @property
    def closed(self) -> bool:
        """The answer was ended by its budget with a completion the model did not choose."""
        return self.budget is not None and self.budget.closed

    def mask(self, row: torch.Tensor) -> None:
        bitmask = self.bitmask
        self.matcher.unsafe_compute_mask_ptr(bitmask.data_ptr(), bitmask.numel() * 4)
        if self.matcher.is_error():
            raise ValueError(f"grammar error: {self.matcher.get_error()}")
        mask_row(row, bitmask)
        if self.budget is not None:
            self.budget.restrict(self.matcher, row)

    def accept(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise ValueError(f"the grammar refused token {token}: {self.matcher.get_error()}")
        if self.budget is not None:
            self.budget.accepted(token, self.matcher)


class LLGuidanceGrammar:
    """A checked grammar (``engine.sampling.Grammar``): a fresh matcher per call.
    ``bounded(max_tokens)`` is the same grammar for one call that must end inside that
    budget (``closer`` set: the server's ``--structured-close``)."""

    def __init__(
        self,
        tokenizer: Any,
        grammar: str,
        words: int,
        closer: Closer | None = None,
        max_tokens: int | None = None,
        until_whole: bool = False,
    ) -> None:
        self.tokenizer, self.grammar, self.words = tokenizer, grammar, words
        self.closer, self.max_tokens = closer, max_tokens
        self.until_whole = until_whole  # see closing.Budget
        self.made: LLGuidanceMatcher | None = None  # the last matcher made (one per call)

    def bounded(self, max_tokens: int) -> LLGuidanceGrammar:
        return LLGuidanceGrammar(
            self.tokenizer, self.grammar, self.words, self.closer, max_tokens, self.until_whole
        )

    @property
    def closed(self) -> bool:
        return self.made is not None and self.made.closed

    def matcher(self) -> LLGuidanceMatcher:
        matcher = llguidance.LLMatcher(self.tokenizer, self.grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(f"grammar error: {matcher.get_error()}")
        budget = None
        if self.closer is not None and self.max_tokens is not None:
            budget = Budget(self.closer, self.max_tokens, self.until_whole)
        self.made = LLGuidanceMatcher(matcher, self.words, budget)
        return self.made


class Grammars:
    """Compiles request constraints against the served model's tokenizer (built on first use:
    about half a second for a 49k vocabulary)."""

    def __init__(
        self, tokenizer: Any, vocab_size: int, eos_ids: Sequence[int], close: bool = True
    ) -> None:
        self._source, self.vocab_size, self.eos_ids = tokenizer, vocab_size, sorted(eos_ids)
        self.close = close  # answers end with the grammar's completion inside max_tokens
        self._tokenizer: Any = None
        self._closer: Closer | None = None

    @property
    def closer(self) -> Closer | None:
        if self.close and self._closer is None:
            self._closer = Closer(self.tokenizer, self.eos_ids)
        return self._closer

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = llguidance.LLTokenizer(
                self._source.backend.to_str(), n_vocab=self.vocab_size, eos_token=self.eos_ids
            )
        return self._tokenizer

    def compile(self, grammar: str, param: str) -> LLGuidanceGrammar:
        """Check ``grammar`` (llguidance's JSON form); an invalid one is a 400 on ``param``."""
        if llguidance is None:
            raise APIError(
                400,
                "structured outputs need the llguidance package: pip install 'astraea[server]'",
                param=param,
                code="unsupported_parameter",
            )
        error = llguidance.LLMatcher.validate_grammar(grammar, self.tokenizer)
        if error:
            raise APIError(400, f"invalid {param}: {error}", param=param, code="invalid_value")
        return LLGuidanceGrammar(self.tokenizer, grammar, (self.vocab_size + 31) // 32, self.closer)

    # ---- the grammars ----------------------------------------------------------------------
    def json_schema(self, schema: dict[str, Any] | bool, param: str) -> LLGuidanceGrammar:
        return self.compile(lark_grammar(f"start: {_json(closed(schema))}"), param)

    def regex(self, pattern: str, param: str) -> LLGuidanceGrammar:
        return self.compile(llguidance.LLMatcher.grammar_from_regex(pattern), param)

    def choice(self, options: Sequence[str], param: str) -> LLGuidanceGrammar:
        return self.compile(lark_grammar("start: " + " | ".join(map(json.dumps, options))), param)

    def lark(self, text: str, param: str) -> LLGuidanceGrammar:
        if llguidance is None:
            self.compile("", param)  # the 400 for a missing library
        try:
            converted = llguidance.gbnf_to_lark.any_to_lark(text)
        except Exception as exc:
            raise APIError(
                400, f"invalid {param}: {exc}", param=param, code="invalid_value"
            ) from None
        return self.compile(lark_grammar(converted), param)

    def structural_tag(
        self, structures: Sequence[Any], triggers: Sequence[str], param: str
    ) -> LLGuidanceGrammar:
        """vLLM's structural tag: free text in which a trigger starts the structure whose
        ``begin`` it opens, then JSON valid for its schema, then its ``end``."""
        if llguidance is None:
            self.compile("", param)  # the 400 for a missing library
        tags = []
        for i, s in enumerate(structures):
            trigger = max((t for t in triggers if s.begin.startswith(t)), key=len, default=None)
            if trigger is None:
                raise APIError(
                    400,
                    f"{param}: structures.{i}.begin {s.begin!r} starts with none of the triggers",
                    param=f"{param}.structures.{i}.begin",
                    code="invalid_value",
                )
            schema = _styled(closed(s.schema_))
            tags.append(
                llguidance.StructTag(trigger=trigger, begin=s.begin, grammar=schema, end=s.end)
            )
        # a trigger written <...> is one special token only if the vocabulary has it as one
        special = all(self._special(t) for t in triggers if t.startswith("<") and t.endswith(">"))
        try:
            text = llguidance.StructTag.to_grammar(tags, assume_special=special)
        except (AssertionError, ValueError) as exc:
            raise APIError(
                400, f"invalid {param}: {exc}", param=param, code="invalid_value"
            ) from None
        return self.compile(lark_grammar(text), param)

    def _special(self, text: str) -> bool:
        ids = self.tokenizer.tokenize_str(text)
        return len(ids) == 1 and self.tokenizer.is_special_token(ids[0])

    def tool_calls(self, tools: Sequence[Any], parallel: bool, param: str) -> LLGuidanceGrammar:
        """``tool_choice: "required"``: after the prompt's ``<tool_call>\\n``, one call (or
        several, ``parallel``) of any of ``tools`` with arguments valid for its schema."""
        call = _json({"anyOf": [_call_schema(t.function) for t in tools]})
        more = ' ("\\n<tool_call>\\n" call "\\n</tool_call>")*' if parallel else ""
        grammar = self.compile(
            lark_grammar(f'start: call "\\n</tool_call>"{more}\ncall: {call}'), param
        )
        grammar.until_whole = parallel  # a cut-off later call is dropped, not finished
        return grammar

    def named_call(self, function: Any, param: str) -> LLGuidanceGrammar:
        """A named tool: after the prompt's ``..."arguments":``, its arguments, then the end."""
        args = _json(_parameters(function))
        return self.compile(lark_grammar(f'start: " " {args} "}}\\n</tool_call>"'), param)


def lark_grammar(text: str) -> str:
    return llguidance.LLMatcher.grammar_from_lark(text)


def _json(schema: dict[str, Any] | bool) -> str:
    """A ``%json`` rule body with our JSON style."""
    return "%json " + json.dumps(_styled(schema))


def _styled(schema: dict[str, Any] | bool) -> dict[str, Any]:
    """``schema`` with our JSON style (the schema's own ``x-guidance`` wins)."""
    if schema is True or schema == {}:
        schema = {}
    elif schema is False:
        raise APIError(400, "a schema of false allows nothing", code="invalid_value")
    return {**schema, "x-guidance": {**JSON_STYLE, **schema.get("x-guidance", {})}}


def _parameters(function: Any) -> dict[str, Any]:
    return closed(function.parameters or {"type": "object", "properties": {}})


_SUBSCHEMAS = ("items", "additionalItems", "not", "if", "then", "else", "contains")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


def closed(schema: Any) -> Any:
    """A schema (a tool's parameters, a response format) with ``additionalProperties:
    false`` wherever an object lists its properties and says nothing else (xgrammar's
    strict mode, which vLLM uses, does the same): a small model otherwise pads calls with
    keys copied from the schema. What it
    accepts is still valid against the original schema."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SUBSCHEMAS:
        if key in out:
            out[key] = closed(out[key])
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [closed(s) for s in out[key]]
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {k: closed(s) for k, s in out[key].items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _call_schema(function: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": function.name}, "arguments": _parameters(function)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }
