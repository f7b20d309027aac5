"""The HTTP edge: OpenAI-shaped request and response models, validated by pydantic.

Requests are strict (``"5"`` is not an integer) and ignore unknown fields, as vLLM does, so
SDK additions do not break clients; fields we know but cannot honour (``n > 1``, ``echo``,
audio, predicted outputs, ...) are refused with 400 rather than silently ignored (the table
in docs/server.md says what happens to each field). vLLM's sampling and structured-output
extras are honoured under vLLM's names; our own extras all start with ``astraea_``.
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
    include_usage: bool | None = False
    continuous_usage_stats: Literal[False] | None = None  # vLLM's; usage comes at the end


class JSONSchemaFormat(_Request):
    name: Annotated[str, Field(min_length=1, max_length=64)] = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None  # the grammar enforces the schema either way


class TagStructure(_Request):
    """One of vLLM's ``structural_tag`` structures: ``begin``, JSON valid for ``schema``,
    ``end``."""

    begin: Annotated[str, Field(min_length=1)]
    schema_: dict[str, Any] | bool = Field(alias="schema")
    end: str = ""


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema", "structural_tag"]
    json_schema: JSONSchemaFormat | None = None
    # vLLM's structural_tag: free text in which each trigger starts one of the structures
    structures: Annotated[list[TagStructure], Field(min_length=1)] | None = None
    triggers: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = (
        None
    )
    format: Any = None  # xgrammar's newer structural tag format: refused (options.py)

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format json_schema needs a json_schema object")
        return self


class StructuredOutputs(_Request):
    """vLLM's ``structured_outputs`` (formerly the ``guided_*`` fields): one constraint."""

    json_: dict[str, Any] | str | None = Field(default=None, alias="json")
    regex: str | None = None
    choice: Annotated[list[str], Field(min_length=1)] | None = None
    grammar: str | None = None
    json_object: bool | None = None
    structural_tag: str | None = None  # a response_format structural_tag object, as JSON

    def given(self) -> list[str]:
        kinds = ("json_", "regex", "choice", "grammar", "structural_tag")
        return [k for k in kinds if getattr(self, k)] + (
            ["json_object"] if self.json_object else []
        )


Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


class _Generation(_Request):
    """Fields shared by chat and text completions."""

    model: str
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    seed: Seed | None = None
    stop: str | Annotated[list[str], Field(max_length=16)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None  # more than 1: 400 (service.py)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None  # accepted; it names the end user and changes nothing
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None
    # vLLM's sampling extras
    top_k: Annotated[int, Field(ge=-1)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0.0, le=2.0)] | None = None
    # structured outputs: OpenAI's response_format (chat) and vLLM's fields
    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputs | None = None
    guided_json: dict[str, Any] | str | None = None
    guided_regex: str | None = None
    guided_choice: Annotated[list[str], Field(min_length=1)] | None = None
    guided_grammar: str | None = None
    # vLLM's extras: forced output lengths for benchmarks.
    min_tokens: Annotated[int, Field(ge=0)] = 0
    ignore_eos: bool = False
    # Ours: job identity and hints for the scheduler.
    astraea_job_id: JobId | None = None
    astraea_tool_latency: Annotated[float, Field(ge=0.0, le=86400.0)] | None = None
    astraea_last: bool | None = None  # force whether this call ends its job
    # the tool the client calls after this answer when the answer names none (its category)
    astraea_tool: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> _Generation:
        if self.stream_options is not None and not self.stream:
            raise ValueError(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            )
        return self

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
    parallel_tool_calls: bool | None = None  # false: at most one tool call
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    # OpenAI's fields for what this server does not do: refused when set (service.py)
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    functions: list[Any] | None = None
    function_call: str | dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    store: bool | None = None
    # accepted, change nothing: stored-completion tags, cache routing and safety ids, tiers
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None

    @model_validator(mode="after")
    def _named_tool_exists(self) -> ChatCompletionRequest:
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or ()}
            if choice.function.name not in names:
                raise ValueError(f"tool_choice names {choice.function.name!r}, not in tools")
        if choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs tools")
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs set to true")
        return self

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Generation):
    prompt: str | Annotated[list[int], Field(min_length=1)] | list[str]
    echo: Literal[False] | None = False
    logprobs: Annotated[int, Field(ge=0, le=20)] | None = None  # OpenAI allows up to 5
    suffix: None = None
    best_of: Annotated[int, Field(ge=1, le=1)] | None = None  # one candidate per choice

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
