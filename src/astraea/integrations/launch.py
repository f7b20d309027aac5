"""Start vLLM's OpenAI server with (or without) the astraea scheduler, from another interpreter.

vLLM lives in its own virtual environment (it pins its own torch), so ``astraea serve-vllm``,
the integration tests and the plugin benchmark start ``python -m
vllm.entrypoints.openai.api_server`` from that interpreter (default ``.venv-vllm``, made by
benchmarks/setup_vllm.sh). The CPU settings are the ones ../shared/VLLM_CPU.md found to work.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from astraea.integrations.settings import PluginSettings
from astraea.integrations.vllm import MIDDLEWARE, SCHEDULER_CLS

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"


def default_python() -> Path:
    """``$ASTRAEA_VLLM_PYTHON``, else the repository's ``.venv-vllm``."""
    return Path(os.environ.get("ASTRAEA_VLLM_PYTHON") or DEFAULT_PYTHON)


def vllm_unavailable(python: Path) -> str | None:
    """Why vLLM with the plugin cannot start from ``python`` (None: it can)."""
    if not python.exists():
        return f"{python} not found (run benchmarks/setup_vllm.sh)"
    module, name = SCHEDULER_CLS.rsplit(".", 1)  # importing it imports vLLM's scheduler
    probe = subprocess.run(
        [str(python), "-c", f"from {module} import {name}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        return (
            "vLLM or astraea does not import there: "
            + (probe.stderr.strip().splitlines() or ["?"])[-1].strip()
        )
    return None


def vllm_command(
    python: Path,
    model_dir: Path,
    *,
    served_name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    plugin: bool = True,
    extra: Sequence[str] = (),
    scheduler_cls: str = SCHEDULER_CLS,
) -> list[str]:
    """The server's command line; ``plugin`` adds the scheduler class and the hints middleware."""
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", served_name,
        "--host", host, "--port", str(port),
    ]  # fmt: skip
    if plugin:
        command += ["--scheduler-cls", scheduler_cls, "--middleware", MIDDLEWARE]
    return command + list(extra)


def vllm_env(
    settings: PluginSettings | None, threads: int = 2, kv_space_gib: int = 1
) -> dict[str, str]:
    """The environment for the server: CPU defaults (kept where the caller set them) and the
    plugin's settings."""
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_space_gib))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{threads - 1}")
    env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    if settings is not None:
        env.update(settings.to_env())
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VLLMProcess:
    """``with VLLMProcess(command, env) as server:`` -> ``server.url`` (…/v1) once healthy."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], port: int, timeout: float = 600.0
    ) -> None:
        self.command, self.env, self.timeout = list(command), dict(env), timeout
        self.url = f"http://127.0.0.1:{port}/v1"
        self.log_path = Path(tempfile.mkstemp(prefix="vllm-astraea-", suffix=".log")[1])
        self.startup_seconds = 0.0
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> VLLMProcess:
        import httpx

        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        health = self.url.removesuffix("/v1") + "/health"
        while time.monotonic() - started < self.timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited while starting:\n{self.log_tail()}")
            try:
                if httpx.get(health, timeout=2).is_success:
                    self.startup_seconds = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM did not start in {self.timeout:.0f} s:\n{self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM (vLLM shuts its engine down, the scheduler releases its pins), then kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
