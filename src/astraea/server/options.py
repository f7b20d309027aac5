"""A request's generation fields as engine options: honoured, or refused with a 400 naming them.

Nothing here is silently dropped: a field we know either changes what the engine does
(``SamplingParams``), is identity only (``user``, ``metadata``: documented as such), or is
refused (``n > 1``, audio, predicted outputs, ...). docs/server.md has the whole table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from astraea.server.errors import APIError
from astraea.server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ResponseFormat,
    _Generation,
)
from astraea.server.structured import Grammars, LLGuidanceGrammar

# chat fields for features this server does not have: any value but null is a 400
_REFUSED_CHAT = {
    "audio": "audio output",
    "functions": "the deprecated functions API (use tools)",
    "function_call": "the deprecated functions API (use tool_choice)",
    "prediction": "predicted outputs",
    "web_search_options": "web search",
    "reasoning_effort": "reasoning (this model does not reason)",
    "verbosity": "verbosity control",
}


def unsupported(field: str, what: str) -> APIError:
    return APIError(
        400, f"{field}: {what} is not supported", param=field, code="unsupported_parameter"
    )


def refuse_unsupported(req: _Generation) -> None:
    """400 for every field set that asks for something this server cannot do."""
    if req.n is not None and req.n > 1:
        # Each choice would be a job of its own that prefills the whole prompt again (KV is
        # shared only within a job here, vLLM's n shares it through its prefix cache), and a
        # job continues from one answer: n requests cost the same and say what they mean.
        raise unsupported(
            "n",
            "more than one choice per request (send n requests: each choice would prefill "
            "the prompt anew, as this engine shares KV only within a job)",
        )
    if isinstance(req, ChatCompletionRequest):
        for field, what in _REFUSED_CHAT.items():
            if getattr(req, field) is not None:
                raise unsupported(field, what)
        if req.modalities is not None and req.modalities != ["text"]:
            raise unsupported("modalities", "output other than text")
        if req.store:
            raise unsupported("store", "storing completions")


def logit_bias(req: _Generation, vocab_size: int) -> tuple[tuple[int, float], ...]:
    """OpenAI's ``{"token id": bias}`` as pairs; ids must be in the vocabulary."""
    out = []
    for key, bias in (req.logit_bias or {}).items():
        if not (key.isascii() and key.isdigit()) or int(key) >= vocab_size:
            raise APIError(
                400,
                f"logit_bias: {key!r} is not a token id of this model (0..{vocab_size - 1})",
                param="logit_bias",
                code="invalid_value",
            )
        out.append((int(key), float(bias)))
    return tuple(out)


def logprobs_count(req: _Generation) -> int | None:
    """How many alternatives per token to report (None: no logprobs)."""
    if isinstance(req, ChatCompletionRequest):
        return (req.top_logprobs or 0) if req.logprobs else None
    if isinstance(req, CompletionRequest):
        return req.logprobs
    return None


def content_constraint(req: _Generation, grammars: Grammars) -> LLGuidanceGrammar | None:
    """The grammar the answer's text must follow: OpenAI's ``response_format`` or vLLM's
    ``structured_outputs`` / ``guided_*`` (at most one of them)."""
    found: list[tuple[str, str, Any]] = []  # (param, kind, value)
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_object":
        found.append(("response_format", "json_object", True))
    elif fmt is not None and fmt.type == "json_schema":
        assert fmt.json_schema is not None
        found.append(("response_format", "json", fmt.json_schema.schema_ or {}))
    elif fmt is not None and fmt.type == "structural_tag":
        found.append(("response_format", "structural_tag", fmt))
    so = req.structured_outputs
    if so is not None:
        given = so.given()
        if len(given) > 1:
            raise _conflict(f"structured_outputs.{g.rstrip('_')}" for g in given)
        for g in given:
            found.append((f"structured_outputs.{g.rstrip('_')}", g.rstrip("_"), getattr(so, g)))
    for kind in ("json", "regex", "choice", "grammar"):
        value = getattr(req, f"guided_{kind}")
        if value is not None:
            found.append((f"guided_{kind}", kind, value))
    if not found:
        return None
    if len(found) > 1:
        raise _conflict(p for p, _, _ in found)
    param, kind, value = found[0]
    if kind == "json_object":
        return grammars.json_schema({"type": "object"}, param)
    if kind == "json":
        return grammars.json_schema(_schema(value, param), param)
    if kind == "regex":
        return grammars.regex(value, param)
    if kind == "choice":
        return grammars.choice(value, param)
    if kind == "structural_tag":
        fmt = _structural_tag(value, param)
        return grammars.structural_tag(fmt.structures, fmt.triggers, param)
    return grammars.lark(value, param)


def tool_constraint(
    req: ChatCompletionRequest, grammars: Grammars, tools: Sequence[Any]
) -> LLGuidanceGrammar | None:
    """``tool_choice`` "required" or a named function, enforced by a grammar."""
    choice = req.tool_choice
    if choice == "required":
        return grammars.tool_calls(tools, req.parallel_tool_calls is not False, "tool_choice")
    name = getattr(getattr(choice, "function", None), "name", None)
    if name is None:
        return None
    spec = next(t.function for t in tools if t.function.name == name)
    return grammars.named_call(spec, "tool_choice")


def _schema(value: Any, param: str) -> dict[str, Any] | bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise APIError(
                400, f"{param}: not a JSON schema: {exc}", param=param, code="invalid_value"
            ) from None
    if not isinstance(value, dict | bool):
        raise APIError(
            400, f"{param}: a JSON schema is an object", param=param, code="invalid_value"
        )
    return value


def _structural_tag(value: Any, param: str) -> ResponseFormat:
    """vLLM's structural tag (``{"type": "structural_tag", "structures": [...], "triggers":
    [...]}``), given as an object (``response_format``) or as JSON text
    (``structured_outputs.structural_tag``); xgrammar's newer ``format`` form is refused."""
    if isinstance(value, str):
        try:
            value = ResponseFormat.model_validate_json(value)
        except ValueError as exc:
            first = exc.errors()[0] if hasattr(exc, "errors") else {"msg": str(exc)}
            raise APIError(
                400,
                f"{param}: not a structural tag: {first.get('msg')}",
                param=param,
                code="invalid_value",
            ) from None
    if value.type != "structural_tag":
        raise APIError(
            400, f"{param}: type must be structural_tag", param=param, code="invalid_value"
        )
    if value.format is not None:
        raise unsupported(
            f"{param}.format", "the structural tag 'format' form (use structures and triggers)"
        )
    if not value.structures or not value.triggers:
        raise APIError(
            400,
            f"{param}: a structural tag needs structures and triggers",
            param=param,
            code="invalid_value",
        )
    return value


def _conflict(params: Any) -> APIError:
    names = ", ".join(params)
    return APIError(
        400,
        f"only one structured output constraint per request; got {names}",
        param=names.split(", ")[0],
        code="invalid_value",
    )
