"""A tool-aware ChatML template and the parser of tool calls from the model's text.

SmolLM2's own template renders only ``role`` and ``content``; agents need tools. We render
ChatML ourselves: the tools' JSON schemas go into the system turn, the model calls a tool by
writing ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, an assistant turn that
called tools is rendered back the same way, and a tool's result is a ``tool`` turn. Without
tools the text is exactly SmolLM2's template (default system prompt included).

Rendering is per turn so that a job's next call renders only its new turns: the prefix is
already in the engine's KV, and re-rendering it could tokenize differently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from astraea.server.protocol import ChatMessage, ToolSpec

START, END = "<|im_start|>", "<|im_end|>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_CALL = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(CALL_CLOSE) + r"|$)", re.S)
_TOOLS_INTRO = (
    "You can call the tools below, each described by a JSON schema:\n<tools>\n{tools}\n</tools>\n"
    "To call a tool, answer with one block per call and write nothing after the blocks:\n"
    '<tool_call>\n{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}\n</tool_call>'
)


@dataclass(frozen=True, slots=True)
class ParsedCall:
    name: str
    arguments: str  # a JSON object, as text


def canonical_arguments(arguments: Any) -> str:
    """One spelling of a JSON object (key order, spacing), so a call we sent out and the
    same call sent back compare equal."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            return arguments.strip()
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False)


class ChatTemplate:
    """ChatML with tools; ``default_system`` is the system turn used when none is given."""

    def __init__(self, default_system: str | None = None) -> None:
        self.default_system = default_system

    @classmethod
    def for_tokenizer(cls, tokenizer: Any) -> ChatTemplate:
        """Take the model's default system prompt from its own template, if it has one."""
        try:
            text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
        except (ValueError, AttributeError):
            return cls(None)
        head = f"{START}system\n"
        if isinstance(text, str) and text.startswith(head) and END in text:
            return cls(text[len(head) : text.index(END)])
        return cls(None)

    # ---- rendering -------------------------------------------------------------------------
    def render(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None = None,
        forced: str = "",
    ) -> str:
        """The whole prompt, ending with the assistant's generation prompt (+ ``forced``)."""
        first = messages[0] if messages else None
        system: str | None = self.default_system
        rest = list(messages)
        if first is not None and first.role in ("system", "developer"):
            system, rest = first.text, rest[1:]
        if tools:
            listing = "\n".join(json.dumps(t.model_dump(exclude_none=True)) for t in tools)
            intro = _TOOLS_INTRO.format(tools=listing)
            system = f"{system}\n\n{intro}" if system else intro
        head = "" if system is None else f"{START}system\n{system}{END}\n"
        return head + self.continuation(rest, forced)

    def extend(
        self,
        messages: Sequence[ChatMessage],
        matched: int,
        tools: Sequence[ToolSpec] | None,
        forced: str,
        ends_with_eos: bool,
    ) -> str:
        """Text to append to a context holding ``messages[:matched]`` (the last turn the
        model's answer, its ``<|im_end|>`` there when ``ends_with_eos``)."""
        closing = "\n" if ends_with_eos else f"{END}\n"
        return closing + self.continuation(messages[matched:], forced)

    def continuation(self, messages: Sequence[ChatMessage], forced: str = "") -> str:
        """New turns appended to a context that ends after a finished turn, then the
        generation prompt."""
        return "".join(self.turn(m) for m in messages) + f"{START}assistant\n{forced}"

    @staticmethod
    def turn(message: ChatMessage) -> str:
        role = "system" if message.role == "developer" else message.role
        return f"{START}{role}\n{turn_text(message)}{END}\n"

    @staticmethod
    def forced_prefix(
        tool_choice: Any, tools: Sequence[ToolSpec] = (), by_grammar: bool = False
    ) -> str:
        """Text the answer is made to start with: any tool (``required``), or a named tool:
        up to ``"arguments":`` when a grammar writes the arguments (structured.py), else up
        to the first argument's opening quote (small models otherwise write the schema)."""
        if tool_choice == "required":
            return f"{CALL_OPEN}\n"
        name = getattr(getattr(tool_choice, "function", None), "name", None)
        if not name:
            return ""
        if by_grammar:
            return f'{CALL_OPEN}\n{{"name": {json.dumps(name)}, "arguments":'

        spec = next((t.function for t in tools if t.function.name == name), None)
        takes = bool(spec and spec.parameters and spec.parameters.get("properties"))
        opening = '{"' if takes else "{"
        return f'{CALL_OPEN}\n{{"name": {json.dumps(name)}, "arguments": {opening}'


def turn_text(message: ChatMessage) -> str:
    """A turn's content with its tool calls written after it as hermes blocks (what the
    model itself writes when it calls a tool)."""
    body = message.text
    if message.tool_calls:
        calls = [
            f'{CALL_OPEN}\n{{"name": {json.dumps(c.function.name)}, "arguments": '
            f"{canonical_arguments(c.function.arguments)}}}\n{CALL_CLOSE}"
            for c in message.tool_calls
        ]
        body = "\n".join(([body] if body else []) + calls)
    return body


# ---- parsing -------------------------------------------------------------------------------
def parse_tool_calls(text: str, tool_names: Sequence[str]) -> tuple[str | None, list[ParsedCall]]:
    """Split an answer into its content and its tool calls. All closed blocks must parse and
    name a known tool, else the whole answer is plain content (a model that writes a
    malformed call has not called anything). A final block cut off by max_tokens counts if
    its JSON is complete, and is dropped if not when calls before it are whole."""
    start = text.find(CALL_OPEN)
    if start < 0 or not tool_names:
        return (text or None), []
    calls: list[ParsedCall] = []
    for match in _CALL.finditer(text, start):
        call = _parse_call(match.group(1), tool_names)
        cut_off = not match.group(0).rstrip().endswith(CALL_CLOSE)
        if call is None and cut_off and calls:
            break
        if call is None:
            return (text or None), []
        calls.append(call)
    content = text[:start].strip()
    return (content or None), calls


def _parse_call(body: str, tool_names: Sequence[str]) -> ParsedCall | None:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("name") not in tool_names:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except (ValueError, RecursionError):
            return None
    if not isinstance(args, dict):
        return None
    return ParsedCall(obj["name"], json.dumps(args, ensure_ascii=False))


def held_back(text: str) -> int:
    """Where streamed content must pause: the start of a tool-call block, or of a partial
    ``<tool_call>`` at the end of the text (it may turn into one)."""
    start = text.find(CALL_OPEN)
    if start >= 0:
        return start
    for k in range(min(len(CALL_OPEN) - 1, len(text)), 0, -1):
        if text.endswith(CALL_OPEN[:k]):
            return len(text) - k
    return len(text)
