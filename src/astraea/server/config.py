"""Server settings (the engine and scheduler settings live in ``EngineConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from astraea.server.browser import LOOPBACK_NAMES


@dataclass(frozen=True, slots=True)
class ServerConfig:
    served_model_name: str = "SmolLM2-135M-Instruct"
    api_key: str | None = None  # Bearer token required on /v1/* when set
    max_queue: int = 256  # calls accepted but without a first token; beyond: 429
    job_ttl: float = 600.0  # seconds a job may wait on a tool before it is reclaimed
    default_max_tokens: int = 512  # when a request sets none (capped by the context left)
    max_body_bytes: int = 8 << 20  # larger bodies: 413
    retry_after: float = 1.0  # seconds, in 429 answers
    poll: float = 0.05  # engine thread: idle wait and TTL sweep period, seconds
    # browser protection (server/browser.py): origins whose pages may call us, besides our
    # own host ("*": any); the Host names we answer to (None: any; loopback names by default,
    # `astraea serve` widens it when it listens on another address)
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_NAMES
    chat_template: str | None = None  # Jinja text overriding the model's own template
    tool_call_parser: str = "hermes"  # how tool calls are written (and parsed)
    # structured answers end with their grammar's completion inside max_tokens
    # (server/closing.py); False: cut wherever max_tokens falls, as vLLM does
    structured_close: bool = True

    def __post_init__(self) -> None:
        if not self.served_model_name:
            raise ValueError("served_model_name must not be empty")
        if self.max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {self.max_queue}")
        if not self.job_ttl > 0:
            raise ValueError(f"job_ttl must be > 0, got {self.job_ttl}")
        if self.tool_call_parser != "hermes":
            raise ValueError(f"tool_call_parser {self.tool_call_parser!r}: only 'hermes' is known")
        if self.default_max_tokens < 1:
            raise ValueError(f"default_max_tokens must be >= 1, got {self.default_max_tokens}")
