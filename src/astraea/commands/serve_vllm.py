"""``astraea serve-vllm``: vLLM's OpenAI server with astraea as its scheduler (docs/vllm.md).

vLLM runs from its own interpreter (default ``.venv-vllm``, made by benchmarks/setup_vllm.sh;
it pins its own torch), so this command only builds the command line and the plugin's
environment and then becomes that process. Importing this module is cheap (no vLLM).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from astraea.commands.options import aliased


def serve_vllm_command(
    ctx: typer.Context,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="Hugging Face model directory (default: the bundled SmolLM2, converted once "
            "to ~/.cache/astraea/smollm2-hf-fp32).",
        ),
    ] = None,
    served_model_name: Annotated[
        str, typer.Option(help="Model name clients must send.")
    ] = "SmolLM2-135M-Instruct",
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    policy: Annotated[
        str, typer.Option("--policy", help="Scheduling policy (see `astraea list`).")
    ] = "astraea",
    policy_param: Annotated[
        list[str], typer.Option(help="Policy setting KEY=VALUE (repeatable), e.g. watermark=0.9.")
    ] = [],  # noqa: B006 (typer reads the default)
    profile: Annotated[
        str | None,
        typer.Option(help="Cost profile (name or JSON from `astraea profile`) for service times."),
    ] = None,
    trace: Annotated[
        Path | None, typer.Option(help="Write the plugin's decision trace (JSONL) here.")
    ] = None,
    pin_ttl: Annotated[
        float, typer.Option(min=0.001, help="Seconds a tool-waiting job may keep pinned KV.")
    ] = 60.0,
    job_ttl: Annotated[
        float, typer.Option(min=0.001, help="Seconds a job may wait for its next call.")
    ] = 600.0,
    vllm_python: Annotated[
        Path | None,
        typer.Option(help="Interpreter with vLLM (default: $ASTRAEA_VLLM_PYTHON or .venv-vllm)."),
    ] = None,
    async_scheduler: Annotated[
        bool, typer.Option(help="Use the AsyncScheduler subclass (CUDA vLLM).")
    ] = False,
    stock: Annotated[
        bool, typer.Option(help="Stock vLLM, without the plugin (to compare).")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the command and exit.")] = False,
) -> None:
    """Start vLLM's OpenAI server with the astraea scheduler plugin; unknown options
    (e.g. --dtype bfloat16 --enforce-eager --max-num-seqs 8) go to vLLM."""
    from astraea.commands.serve import _policy_params
    from astraea.integrations.launch import default_python, vllm_command, vllm_env
    from astraea.integrations.settings import PluginSettings
    from astraea.integrations.vllm import ASYNC_SCHEDULER_CLS, SCHEDULER_CLS
    from astraea.policies import make_policy

    params = _policy_params(policy_param)
    try:
        make_policy(policy, **params)
    except TypeError as exc:  # a setting the policy does not have
        raise ValueError(f"--policy-param: {exc}") from exc
    settings = PluginSettings(
        policy=policy,
        policy_params=params,
        profile=profile or "",
        trace_path=str(trace) if trace else "",
        pin_ttl=pin_ttl,
        job_ttl=job_ttl,
    )
    python = vllm_python or default_python()
    command = vllm_command(
        python,
        model or _default_model(dry_run),
        served_name=served_model_name,
        host=host,
        port=port,
        plugin=not stock,
        extra=ctx.args,
        scheduler_cls=ASYNC_SCHEDULER_CLS if async_scheduler else SCHEDULER_CLS,
    )
    env = vllm_env(None if stock else settings)
    if dry_run:
        shown = {k: v for k, v in env.items() if k.startswith(("ASTRAEA_VLLM_", "VLLM_", "HF_"))}
        typer.echo(" ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(shown.items())))
        typer.echo(shlex.join(command))
        return
    if not python.exists():
        raise ValueError(f"{python} not found: run benchmarks/setup_vllm.sh or pass --vllm-python")
    typer.echo(f"starting vLLM ({'stock' if stock else f'astraea: {policy}'}) ...", err=True)
    os.execve(command[0], command, env)


def register(app: typer.Typer) -> None:
    """Add ``serve-vllm`` to ``app``; options it does not know pass through to vLLM."""
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True}
    app.command("serve-vllm", context_settings=passthrough, cls=aliased({}))(serve_vllm_command)


def _default_model(dry_run: bool) -> Path:
    path = Path.home() / ".cache" / "astraea" / "smollm2-hf-fp32"
    if not dry_run and not (path / "config.json").is_file():
        from astraea.engine.convert import convert_gguf

        typer.echo(f"converting the bundled SmolLM2 to {path} ...", err=True)
        convert_gguf(path, None, dtype="float32", force=True)
    return path
