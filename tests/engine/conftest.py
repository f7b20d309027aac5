"""Shared engine fixtures: the real model is loaded once per session (dequantizing takes
seconds); everything that needs torch, gguf or transformers skips cleanly without them."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a model hub


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a 2-core machine shared with other jobs, two OpenMP threads
    spin against each other and a forward pass gets ~10x slower (measured)."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def smollm():
    """The bundled SmolLM2-135M-Instruct checkpoint (float32 tensors + tokenizer)."""
    pytest.importorskip("torch")
    pytest.importorskip("gguf")
    pytest.importorskip("tokenizers")
    from astraea.engine.weights import WeightsError, default_model_path, load_checkpoint

    try:
        path = default_model_path()
    except WeightsError as exc:
        pytest.skip(str(exc))
    return load_checkpoint(path)


@pytest.fixture(scope="session")
def smollm_fp32(smollm):
    """Our model in float32 over the checkpoint's tensors."""
    import torch

    from astraea.engine.model import LlamaModel

    return LlamaModel.from_tensors(smollm.config, smollm.tensors, torch.float32)


@pytest.fixture(scope="session")
def hf_smollm(smollm):
    """transformers' LlamaForCausalLM over the SAME dequantized tensors, float32."""
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from tests.engine.reference import hf_model

    return hf_model(smollm.config, smollm.tensors)
