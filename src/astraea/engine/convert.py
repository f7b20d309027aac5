"""Write a checkpoint (by default the bundled GGUF) as a Hugging Face Llama directory.

Why: transformers and vLLM load a local Hugging Face directory far more readily than a
quantized GGUF (transformers' GGUF path dequantizes for ~16 s, cannot ``save_pretrained`` the
result, and drops SmolLM's digit-splitting pre-tokenizer). Converting once gives the peers we
measure against the very same float weights and the same tokenizer as our engine.

Only torch, safetensors and tokenizers are needed; transformers is not imported. The output:
``config.json``, ``model.safetensors`` (HF names; ``lm_head`` left out when tied, as
transformers saves it), ``tokenizer.json``, ``tokenizer_config.json`` (chat template, special
tokens, ``model_max_length``, ``tokenizer_class``), ``special_tokens_map.json`` and
``generation_config.json``.

Default dtype float32: the GGUF's Q4_1 / Q8_0 blocks dequantize to ``scale * q + min`` in
float32, which bf16 and fp16 cannot hold exactly; float32 keeps the converted directory
bit-identical to what our engine computes with, so parity checks compare engines, not
roundings. Pass ``dtype="bfloat16"`` for a half-size directory (vLLM and transformers cast on
load either way).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from astraea.engine.config import ModelConfig
from astraea.engine.tokenizer import Tokenizer
from astraea.engine.weights import Checkpoint, WeightsError, load_checkpoint

CONVERT_DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_DTYPE = "float32"
WEIGHTS_FILE = "model.safetensors"
# Every file this module writes; ``force`` replaces exactly these (plus stale weight shards).
OUTPUT_FILES = (
    "config.json",
    WEIGHTS_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)


def convert_gguf(
    output: str | Path,
    model: str | Path | None = None,
    dtype: str = DEFAULT_DTYPE,
    force: bool = False,
) -> Path:
    """Load ``model`` (GGUF file or HF directory; None: the bundled SmolLM2) and write it
    to the directory ``output``. Returns the directory."""
    _check_dtype(dtype)
    out = _prepare_output(Path(output), force)  # fail before the seconds of loading
    checkpoint = load_checkpoint(model)
    if Path(checkpoint.path).resolve() == out.resolve():
        raise WeightsError(f"{out}: the output directory is the model being converted")
    return write_hf_dir(checkpoint, out, dtype, force=True)


def write_hf_dir(
    checkpoint: Checkpoint, output: str | Path, dtype: str = DEFAULT_DTYPE, force: bool = False
) -> Path:
    """Write ``checkpoint`` as a Hugging Face LlamaForCausalLM directory."""
    _check_dtype(dtype)
    if checkpoint.tokenizer is None:
        raise WeightsError("the checkpoint was loaded without its tokenizer")
    out = _prepare_output(Path(output), force)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.safetensors*"):  # extra shards would be loaded too
        stale.unlink()
    config, tok = checkpoint.config, checkpoint.tokenizer
    special = _special_tokens(config, tok)
    tok.backend.save(str(out / "tokenizer.json"))
    _write_json(out / "config.json", hf_config_dict(config, dtype, special["pad_token_id"]))
    _write_json(out / "generation_config.json", _generation_config(special))
    _write_json(out / "special_tokens_map.json", _special_tokens_map(special))
    _write_json(out / "tokenizer_config.json", _tokenizer_config(config, tok, special))
    _save_weights(checkpoint.tensors, config.tie_embeddings, getattr(torch, dtype), out)
    # safetensors creates its file 0600; give it the mode the other files got (umask), so a
    # server running as another user can read the directory.
    (out / WEIGHTS_FILE).chmod((out / "config.json").stat().st_mode & 0o777)
    return out


def hf_config_dict(config: ModelConfig, dtype: str, pad_token_id: int | None) -> dict[str, Any]:
    """``config.json`` of a LlamaForCausalLM with our model's shape."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "rope_scaling": None,
        "max_position_embeddings": config.max_position,
        "tie_word_embeddings": config.tie_embeddings,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": _one_or_list(config.eos_token_ids),
        "pad_token_id": pad_token_id,
        "torch_dtype": dtype,  # read by transformers 4.x and vLLM
        "dtype": dtype,  # the name transformers 5 writes
    }


# ---- pieces ------------------------------------------------------------------------------------
def _check_dtype(dtype: str) -> None:
    if dtype not in CONVERT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(CONVERT_DTYPES)}, got {dtype!r}")


def _prepare_output(out: Path, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty; pass --force to overwrite")
    return out


def _save_weights(
    tensors: dict[str, torch.Tensor], tied: bool, dtype: torch.dtype, out: Path
) -> None:
    from safetensors.torch import save_file

    keep = {
        # A copy each: the loaders hand out q/k/v and gate/up as views of fused tensors,
        # and safetensors refuses tensors that share memory.
        name: t.detach().to(dtype=dtype, copy=True).contiguous()
        for name, t in sorted(tensors.items())
        if not (tied and name == "lm_head.weight")  # transformers re-ties it on load
    }
    save_file(keep, str(out / WEIGHTS_FILE), metadata={"format": "pt"})


def _special_tokens(config: ModelConfig, tok: Tokenizer) -> dict[str, Any]:
    """bos / eos / pad as ids and strings; pad is the first EOS (as SmolLM2 ships it)."""
    bos_id = tok.bos_token_id if tok.bos_token_id is not None else config.bos_token_id
    eos_ids = sorted(set(config.eos_token_ids) | set(tok.eos_token_ids))
    eos_id = min(tok.eos_token_ids) if tok.eos_token_ids else (eos_ids[0] if eos_ids else None)
    return {
        "bos_token_id": bos_id,
        "eos_token_ids": eos_ids,
        "pad_token_id": eos_id,
        "bos_token": None if bos_id is None else tok.token(bos_id),
        "eos_token": None if eos_id is None else tok.token(eos_id),
    }


def _generation_config(special: dict[str, Any]) -> dict[str, Any]:
    return {
        "bos_token_id": special["bos_token_id"],
        "eos_token_id": _one_or_list(special["eos_token_ids"]),
        "pad_token_id": special["pad_token_id"],
    }


def _special_tokens_map(special: dict[str, Any]) -> dict[str, Any]:
    names = {"bos_token": special["bos_token"], "eos_token": special["eos_token"]}
    names["pad_token"] = special["eos_token"]
    return {k: _token_entry(v) for k, v in names.items() if v is not None}


def _tokenizer_config(config: ModelConfig, tok: Tokenizer, special: dict[str, Any]) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",  # portable: no custom tokenizer code
        "model_max_length": config.max_position,
        "bos_token": special["bos_token"],
        "eos_token": special["eos_token"],
        "pad_token": special["eos_token"],
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": tok.chat_template,
    }


def _token_entry(token: str) -> dict[str, Any]:
    return {
        "content": token,
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
    }


def _one_or_list(ids: Any) -> int | list[int] | None:
    ids = list(ids)
    if not ids:
        return None
    return ids[0] if len(ids) == 1 else ids


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
