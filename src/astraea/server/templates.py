"""The model's own chat template (Jinja, sandboxed), and which template a server uses.

A model brings its template in its files: GGUF metadata ``tokenizer.chat_template`` (the
bundled SmolLM2 GGUF stores a plain ChatML template there, with a default system prompt and
no tools) or ``chat_template`` in a Hugging Face ``tokenizer_config.json``; ``--chat-template
FILE`` overrides it, and a model without one gets our ChatML (``chat_template.py``).

Tools: a template that reads ``tools`` gets them (and assistant ``tool_calls``) as
transformers passes them; one that does not (SmolLM2's) gets them the way our ChatML does,
described in the system turn, with earlier calls written back as hermes ``<tool_call>``
blocks, so a small model still sees its tools. Either way calls are parsed in the hermes
format (``--tool-call-parser hermes``).

A job's next call appends only its new turns to the KV: the text the template adds for them
is the whole rendering minus the rendering of the turns already there, when the latter is a
prefix of the former (true of the usual templates); otherwise the call starts the job anew.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from astraea.engine.tokenizer import compile_chat_template
from astraea.server.chat_template import _TOOLS_INTRO, ChatTemplate, turn_text
from astraea.server.errors import APIError
from astraea.server.protocol import ChatMessage, ToolSpec

TOOL_CALL_PARSERS = ("hermes",)
_MARK = "\x00ASTRAEA\x00"  # content no template writes itself


class JinjaTemplate:
    """A model's Jinja chat template behind the interface of our ChatML one."""

    forced_prefix = staticmethod(ChatTemplate.forced_prefix)

    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source
        try:
            self.template = compile_chat_template(source)
        except TemplateError as exc:
            raise ValueError(f"the chat template does not compile: {exc}") from exc
        self.bos, self.eos = bos_token, eos_token
        self.knows_tools = "tools" in source
        self.default_system: str | None = None
        self.closing = ""  # what the template writes after an assistant turn's content
        try:  # probes; a template that refuses them still renders real conversations
            probe = self._render([{"role": "user", "content": "x"}], None, True)
            pair = [{"role": "user", "content": "x"}, {"role": "assistant", "content": _MARK}]
            after = self._render(pair, None, False)
        except APIError:
            return
        head = "<|im_start|>system\n"  # a ChatML template's default system turn
        if probe.startswith(head) and "<|im_end|>" in probe:
            self.default_system = probe[len(head) : probe.index("<|im_end|>")]
        if _MARK in after:
            self.closing = after[after.rindex(_MARK) + len(_MARK) :]

    def _render(self, messages: list[dict[str, Any]], tools: Any, generation: bool) -> str:
        kwargs: dict[str, Any] = {"tools": tools} if tools else {}
        try:
            return self.template.render(
                messages=messages,
                add_generation_prompt=generation,
                bos_token=self.bos,
                eos_token=self.eos,
                **kwargs,
            )
        except (TemplateError, ValueError, TypeError, KeyError, IndexError) as exc:
            # the template refused these messages (raise_exception, a missing field)
            raise APIError(
                400,
                f"the model's chat template cannot render these messages: {exc}",
                param="messages",
                code="invalid_value",
            ) from None

    def render(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None = None,
        forced: str = "",
    ) -> str:
        dicts, listing = self._inputs(messages, tools)
        return self._render(dicts, listing, True) + forced

    def extend(
        self,
        messages: Sequence[ChatMessage],
        matched: int,
        tools: Sequence[ToolSpec] | None,
        forced: str,
        ends_with_eos: bool,
    ) -> str | None:
        """Text to append to a context holding ``messages[:matched]`` (its last turn the
        model's own answer, ended with EOS when ``ends_with_eos``); None when the template
        does not render the conversation as that prefix plus more."""
        dicts, listing = self._inputs(messages, tools)
        whole = self._render(dicts, listing, True)
        before = self._render(dicts[:matched], listing, False)
        if not whole.startswith(before) or not before.endswith(self.closing):
            return None
        closing = self.closing
        if ends_with_eos and self.eos and closing.startswith(self.eos):
            closing = closing[len(self.eos) :]
        return closing + whole[len(before) :] + forced

    def _inputs(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        listing = [t.model_dump(exclude_none=True) for t in tools] if tools else None
        if self.knows_tools:
            return [_as_dict(m) for m in messages], listing
        dicts = [_as_text(m) for m in messages]
        if listing:
            intro = _TOOLS_INTRO.format(tools="\n".join(json.dumps(t) for t in listing))
            if dicts and dicts[0]["role"] == "system":
                dicts[0] = {**dicts[0], "content": f"{dicts[0]['content']}\n\n{intro}"}
            else:
                system = f"{self.default_system}\n\n{intro}" if self.default_system else intro
                dicts.insert(0, {"role": "system", "content": system})
        return dicts, None


def _as_dict(message: ChatMessage) -> dict[str, Any]:
    """A message as transformers gives it to templates (tool arguments as objects)."""
    out: dict[str, Any] = {"role": _role(message), "content": message.text}
    if message.name is not None:
        out["name"] = message.name
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.function.name, "arguments": _arguments(c.function)},
            }
            for c in message.tool_calls
        ]
    return out


def _as_text(message: ChatMessage) -> dict[str, Any]:
    """A message for a template that knows only role and content (earlier tool calls in
    the content, as the model wrote them)."""
    return {"role": _role(message), "content": turn_text(message)}


def _role(message: ChatMessage) -> str:
    return "system" if message.role == "developer" else message.role


def _arguments(function: Any) -> Any:
    try:
        return json.loads(function.arguments)
    except (ValueError, RecursionError):
        return function.arguments


def choose_template(tokenizer: Any, override: str | None = None) -> ChatTemplate | JinjaTemplate:
    """``override`` (the text of ``--chat-template``), else the model's own template, else
    our ChatML."""
    source = override if override is not None else getattr(tokenizer, "chat_template", None)
    if not source:
        return ChatTemplate.for_tokenizer(tokenizer)
    bos = getattr(tokenizer, "bos_token", None) or ""
    eos = getattr(tokenizer, "eos_token", None) or ""
    return JinjaTemplate(source, bos, eos)


def read_template(path: str | Path) -> str:
    """``--chat-template``: a Jinja file, or a JSON file holding ``chat_template`` (a
    ``tokenizer_config.json``)."""
    text = Path(path).read_text()
    if str(path).endswith(".json"):
        value = json.loads(text).get("chat_template")
        if isinstance(value, list):
            value = next((t["template"] for t in value if t.get("name") == "default"), None)
        if not isinstance(value, str):
            raise ValueError(f"{path} has no chat_template string")
        return value
    return text
