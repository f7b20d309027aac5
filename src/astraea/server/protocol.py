"""The HTTP edge: OpenAI-shaped request and response models, validated by pydantic.

Requests are strict (``"5"`` is not an integer) and ignore unknown fields, as vLLM does, so
SDK additions do not break clients; fields we know but cannot honour (``n > 1``, logprobs,
``echo``) are refused with 400 rather than silently ignored. Our own extras all start with
``astraea_`` (plus vLLM's ``min_tokens`` / ``ignore_eos``), so a stock server ignores them.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JOB_HEADER = "X-Astraea-Job-Id"
MAX_ID_CHARS = 256
# A job id goes back in a response header: visible ASCII, inner spaces allowed (no CR, LF,
# NUL, other controls or non-ASCII, which HTTP headers cannot carry safely).
ID_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"
JobId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
# OpenAI's and vLLM's seed is a signed 64-bit integer.
Seed = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class TextPart(_Request):
    type: Literal["text"]
    text: str


class FunctionCall(_Request):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCallIn(_Request):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class FunctionSpec(_Request):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(_Request):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Request):
    include_usage: bool = False


class _Generation(_Request):
    """Fields shared by chat and text completions."""

    model: str
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    seed: Seed | None = None
    stop: str | Annotated[list[str], Field(max_length=16)] | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1  # one choice per request
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # vLLM's extras: forced output lengths for benchmarks.
    min_tokens: Annotated[int, Field(ge=0)] = 0
    ignore_eos: bool = False
    # Ours: job identity and hints for the scheduler.
    astraea_job_id: JobId | None = None
    astraea_tool_latency: Annotated[float, Field(ge=0.0, le=86400.0)] | None = None
    astraea_last: bool | None = None  # force whether this call ends its job
    # the tool the client calls after this answer when the answer names none (its category)
    astraea_tool: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatCompletionRequest(_Generation):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    logprobs: Literal[False] | None = None

    @model_validator(mode="after")
    def _named_tool_exists(self) -> ChatCompletionRequest:
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or ()}
            if choice.function.name not in names:
                raise ValueError(f"tool_choice names {choice.function.name!r}, not in tools")
        return self

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Generation):
    prompt: str | Annotated[list[int], Field(min_length=1)] | list[str]
    echo: Literal[False] = False
    logprobs: None = None
    suffix: None = None

    @model_validator(mode="after")
    def _one_prompt(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and self.prompt and isinstance(self.prompt[0], str):
            if len(self.prompt) != 1:
                raise ValueError("one prompt per request")
            self.prompt = self.prompt[0]
        if self.prompt == [] or self.prompt == "":
            raise ValueError("the prompt is empty")
        return self


# ---- responses (plain dicts in OpenAI's shapes; built in responses.py) ------------------------
def now_s() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """OpenAI's usage block; ``cached_tokens`` is the job's context carried over from its
    previous call (its KV may be kept, swapped or recomputed, as the policy chose)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def model_card(name: str, max_model_len: int, created: int) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "astraea",
        "max_model_len": max_model_len,
    }
