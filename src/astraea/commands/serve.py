"""``astraea serve``: the OpenAI-compatible server over our engine (docs/server.md).

Importing this module is cheap (no torch, no FastAPI): the CLI imports it on every start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _policy_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--policy-param wants KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="GGUF file or Hugging Face directory "
            "(default: the bundled SmolLM2-135M-Instruct).",
        ),
    ] = None,
    served_model_name: Annotated[
        str | None, typer.Option(help="Model name clients must send (default: the file's).")
    ] = None,
    policy: Annotated[
        str, typer.Option("--policy", help="Scheduling policy (see `astraea list`).")
    ] = "astraea",
    policy_short: Annotated[
        str | None, typer.Option("-P", hidden=True, help="Old short name of --policy.")
    ] = None,
    policy_param: Annotated[
        list[str], typer.Option(help="Policy setting KEY=VALUE (repeatable), e.g. watermark=0.9.")
    ] = [],  # noqa: B006 (typer reads the default)
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")] = "auto",
    block_size: Annotated[int, typer.Option(min=1, help="Tokens per KV block.")] = 16,
    num_gpu_blocks_override: Annotated[
        int, typer.Option(min=1, help="KV blocks on the device tier (vLLM's name).")
    ] = 1024,
    gpu_blocks: Annotated[
        int | None, typer.Option(min=1, hidden=True, help="Old name of --num-gpu-blocks-override.")
    ] = None,
    cpu_blocks: Annotated[
        int, typer.Option(min=0, help="KV blocks on the host tier (swap space).")
    ] = 0,
    max_num_seqs: Annotated[int, typer.Option(min=1, help="Max running calls.")] = 256,
    max_num_batched_tokens: Annotated[
        int, typer.Option(min=1, help="Token budget per step (vLLM's name).")
    ] = 8192,
    max_batched_tokens: Annotated[
        int | None, typer.Option(min=1, hidden=True, help="Old name of --max-num-batched-tokens.")
    ] = None,
    max_steps_per_plan: Annotated[int, typer.Option(min=1, help="Decode steps per plan.")] = 1,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Torch CPU threads (per worker with --workers).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Split each step's forward pass across this many threads (CPU cores)."
        ),
    ] = 1,
    max_queue: Annotated[
        int, typer.Option(min=1, help="Calls queued without a first token before new ones get 429.")
    ] = 256,
    job_ttl: Annotated[
        float,
        typer.Option(
            min=0.001, help="Seconds a job may wait on a tool before its KV is reclaimed."
        ),
    ] = 600.0,
    default_max_tokens: Annotated[
        int, typer.Option(min=1, help="max_tokens when a request sets none.")
    ] = 512,
    api_key: Annotated[
        str | None, typer.Option(envvar="ASTRAEA_API_KEY", help="Require this Bearer key on /v1.")
    ] = None,
    allowed_origins: Annotated[
        list[str],
        typer.Option(
            help="Origin whose web pages may call the server (repeatable or comma-separated; "
            "'*' for any). Default: only pages served from this server's own host.",
        ),
    ] = [],  # noqa: B006 (typer reads the default)
    chat_template: Annotated[
        Path | None,
        typer.Option(
            help="Jinja chat template file (or a tokenizer_config.json) to use instead of the "
            "model's own; a model without one gets ChatML.",
        ),
    ] = None,
    tool_call_parser: Annotated[
        str, typer.Option(help="Format of tool calls in the model's text: hermes.")
    ] = "hermes",
    no_structured_close: Annotated[
        bool,
        typer.Option(
            "--no-structured-close",
            help="Cut structured outputs (JSON schemas, forced tool calls) wherever max_tokens "
            "falls, as vLLM does, instead of ending them with a short completion of their "
            "grammar inside max_tokens so that they parse (docs/server.md).",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the model over the OpenAI API, scheduled as agent jobs (docs/server.md)."""
    try:
        from astraea.engine import Engine, EngineConfig
        from astraea.engine.weights import WeightsError, default_model_path
        from astraea.server import ServerConfig, create_app
        from astraea.server.foreground import serve
    except ImportError as exc:
        raise ValueError(
            f"serve needs the engine and server extras (pip install 'astraea[engine,server]'): "
            f"{exc}"
        ) from exc
    engine_config = EngineConfig(
        device=device,
        dtype=dtype,
        block_size=block_size,
        num_gpu_blocks=gpu_blocks or num_gpu_blocks_override,
        num_cpu_blocks=cpu_blocks,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_batched_tokens or max_num_batched_tokens,
        num_threads=threads,
        num_workers=workers,
    )
    from astraea.policies import make_policy

    try:
        policy = policy_short or policy
        chosen = make_policy(policy, **_policy_params(policy_param))
    except TypeError as exc:  # a setting the policy does not have
        raise ValueError(f"--policy-param: {exc}") from exc
    try:
        path = model or default_model_path()
    except WeightsError as exc:
        raise ValueError(str(exc)) from exc
    name = served_model_name or Path(path).name.split(".")[0]
    from astraea.server.templates import TOOL_CALL_PARSERS, read_template

    if tool_call_parser not in TOOL_CALL_PARSERS:
        raise ValueError(
            f"--tool-call-parser {tool_call_parser!r}: known parsers are {TOOL_CALL_PARSERS}"
        )
    try:
        template = None if chat_template is None else read_template(chat_template)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--chat-template: {exc}") from exc
    from astraea.server.browser import LOOPBACK_NAMES, is_loopback

    # On loopback only our own names: a rebound DNS name must not reach us. Elsewhere the
    # operator chose to be reachable under any name (a proxy, a LAN name).
    hosts = (*LOOPBACK_NAMES, host.lower().strip("[]")) if is_loopback(host.strip("[]")) else None
    origins = tuple(o.strip() for item in allowed_origins for o in item.split(",") if o.strip())
    server_config = ServerConfig(
        served_model_name=name,
        allowed_origins=origins,
        allowed_hosts=hosts,
        api_key=api_key,
        max_queue=max_queue,
        job_ttl=job_ttl,
        default_max_tokens=default_max_tokens,
        chat_template=template,
        tool_call_parser=tool_call_parser,
        structured_close=not no_structured_close,
    )
    typer.echo(f"loading {path} ...", err=True)
    engine = Engine(
        path, engine_config, chosen, scheduler_overrides={"max_steps_per_plan": max_steps_per_plan}
    )
    app = create_app(engine, server_config)
    typer.echo(f"serving {name!r} with policy {policy!r} on http://{host}:{port}/v1", err=True)
    serve(app, host=host, port=port, log_level=log_level)  # the engine on this thread
