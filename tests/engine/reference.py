"""transformers' Llama as the reference implementation, built from our tensors."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from astraea.engine.config import ModelConfig


def hf_config(config: ModelConfig):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        rope_theta=config.rope_theta,
        rms_norm_eps=config.rms_norm_eps,
        max_position_embeddings=config.max_position,
        tie_word_embeddings=config.tie_embeddings,
        bos_token_id=config.bos_token_id,
        eos_token_id=list(config.eos_token_ids) or None,
        pad_token_id=config.eos_token_ids[0] if config.eos_token_ids else None,
    )


def hf_model(config: ModelConfig, tensors: Mapping[str, torch.Tensor]):
    """A float32 ``LlamaForCausalLM`` holding ``tensors`` (no random init, no copy)."""
    from accelerate import init_empty_weights
    from transformers import LlamaForCausalLM

    with init_empty_weights():
        model = LlamaForCausalLM(hf_config(config))
    model.load_state_dict(dict(tensors), strict=not config.tie_embeddings, assign=True)
    if config.tie_embeddings:
        model.tie_weights()
    return model.eval()


@torch.inference_mode()
def hf_last_logits(model, tokens: list[int]) -> torch.Tensor:
    """Reference logits of the last position after a full forward pass over ``tokens``."""
    return model(torch.tensor([tokens])).logits[0, -1].float()
