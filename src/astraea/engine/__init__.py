"""Our PyTorch inference engine: a Llama decoder over a paged KV cache, the KV tiers that make
the scheduler's block copies real, weight and tokenizer loaders, the model runner, and the
engine loop (``Engine``) with its sampling.

Only the configs are imported eagerly; everything else loads on first use, so importing
``astraea.engine.config`` (CLI, simulator) needs neither torch nor the model packages.
"""

from importlib import import_module
from typing import Any

from astraea.engine.config import EngineConfig, ModelConfig

_LAZY = {
    "Checkpoint": "astraea.engine.weights",
    "Engine": "astraea.engine.engine",
    "KVPool": "astraea.engine.kv_pool",
    "LlamaModel": "astraea.engine.model",
    "ModelRunner": "astraea.engine.runner",
    "Output": "astraea.engine.sampling",
    "Request": "astraea.engine.sampling",
    "SamplingParams": "astraea.engine.sampling",
    "Tokenizer": "astraea.engine.tokenizer",
    "WeightsError": "astraea.engine.weights",
    "default_model_path": "astraea.engine.weights",
    "greedy": "astraea.engine.runner",
    "load_checkpoint": "astraea.engine.weights",
}

__all__ = ["EngineConfig", "ModelConfig", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'astraea.engine' has no attribute {name!r}")
    return getattr(import_module(module), name)
