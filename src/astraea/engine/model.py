"""A Llama decoder (RMSNorm, RoPE, GQA, SwiGLU) that reads and writes a paged KV cache.

At this model size per-op overhead is a large share of a step (the larger, the faster the
hardware's matmuls), so each layer runs as few ops as it can: Q, K and V come from one fused
matmul, as do the MLP's gate and up projections; RoPE is applied to Q and K together in place
(``x * cos + roll(x) * signed_sin``, three ops); the cos/sin rows of the step are looked up
once and shared by all layers. Logits are computed only for the rows that sample.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from astraea.engine.attention import AttentionMeta, paged_attention, write_kv
from astraea.engine.config import ModelConfig

# oneDNN picks its packed layout for this many rows; decode batches are about this size and
# larger steps lose little (vLLM-CPU uses the same hint).
PREPACK_BATCH_HINT = 32
# A step of more rows runs its MLP in row tiles of at most this many, so that each tile's
# [rows, 2 * intermediate] activations stay in the last-level cache through SiLU, the product
# and the down projection: 3,200 rows (8 prompts of 400) took 160 ms per layer whole and
# 143-150 ms in tiles of 768-1,024 (SmolLM2, two threads, 32 MB L3); at 512 rows or fewer
# tiles only cost.
MLP_TILE_ROWS = 1024


def _param(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t, requires_grad=False)


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` for a plain weight, or one prepacked by ``LlamaModel.prepack``."""
    if weight.is_mkldnn:
        return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")
    return F.linear(x, weight)


def prepack_supported() -> bool:
    """Whether this torch build can keep linear weights in oneDNN's prepacked layout."""
    ops = getattr(torch.ops, "mkldnn", None)
    return bool(
        torch.backends.mkldnn.is_available()
        and ops is not None
        and hasattr(ops, "_reorder_linear_weight")
        and hasattr(ops, "_linear_pointwise")
    )


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm computed in float32 as HF Llama does; written out because ``F.rms_norm`` on
    the CPU was ~10x slower at prefill sizes (512 rows: 1.9 ms against 0.15 ms)."""
    xf = x.float()
    scale = xf.square().mean(-1, keepdim=True).add_(eps).rsqrt_()
    if x.dtype == torch.float32:
        return (x * scale).mul_(weight)
    return xf.mul_(scale).to(x.dtype).mul_(weight)


def fused(parts: list[torch.Tensor]) -> torch.Tensor:
    """The row-wise concatenation of ``parts``: a view when they already are consecutive
    row blocks of one tensor (as the loaders store them), else a copy (``torch.cat``)."""
    first = parts[0]
    expect = first.data_ptr()
    for p in parts:
        same = p.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
        if not (same and p.is_contiguous() and p.data_ptr() == expect):
            return torch.cat(parts)
        expect += p.numel() * p.element_size()
    rows = sum(p.shape[0] for p in parts)
    return first.new_empty(0).set_(
        first.untyped_storage(), first.storage_offset(), (rows, *first.shape[1:])
    )


class DecoderLayer(nn.Module):
    """One transformer block; weights given under HF names relative to the layer."""

    def __init__(self, config: ModelConfig, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads = config.num_heads, config.num_kv_heads
        self.head_dim, self.eps = config.head_dim, config.rms_norm_eps
        qkv = [w[f"self_attn.{p}_proj.weight"] for p in ("q", "k", "v")]
        self.qkv_weight = _param(fused(qkv))
        self.o_weight = _param(w["self_attn.o_proj.weight"])
        self.gate_up_weight = _param(fused([w["mlp.gate_proj.weight"], w["mlp.up_proj.weight"]]))
        self.down_weight = _param(w["mlp.down_proj.weight"])
        self.input_norm = _param(w["input_layernorm.weight"])
        self.post_norm = _param(w["post_attention_layernorm.weight"])

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        layer_cache: torch.Tensor,
        meta: AttentionMeta,
    ) -> torch.Tensor:
        rows = x.shape[0]
        heads, kv_heads = self.num_heads, self.num_kv_heads
        h = rms_norm(x, self.input_norm, self.eps)
        qkv = linear(h, self.qkv_weight).view(rows, heads + 2 * kv_heads, self.head_dim)
        qk = qkv[:, : heads + kv_heads]
        rotated = qk.roll(self.head_dim // 2, -1)
        qk.mul_(cos).addcmul_(rotated, sin)
        kv = qkv[:, heads:]
        write_kv(layer_cache, kv, meta.slot_mapping)
        attn = paged_attention(qkv[:, :heads], kv, layer_cache, meta)
        return self.mlp_residual(x + linear(attn, self.o_weight))

    def mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus the MLP of its post-attention norm. A step of more than
        ``MLP_TILE_ROWS`` rows is done in balanced row tiles, added into ``x`` in place (both
        callers pass a fresh sum)."""
        rows = x.shape[0]
        if rows <= MLP_TILE_ROWS:
            return x + self._mlp(x)
        tiles = -(-rows // MLP_TILE_ROWS)
        step = -(-rows // tiles)
        for start in range(0, rows, step):
            part = x[start : start + step]
            part.add_(self._mlp(part))
        return x

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        h = rms_norm(x, self.post_norm, self.eps)
        gate, up = linear(h, self.gate_up_weight).chunk(2, dim=-1)
        return linear(F.silu(gate) * up, self.down_weight)


class LlamaModel(nn.Module):
    """Embedding, decoder layers, final norm and (possibly tied) LM head."""

    def __init__(self, config: ModelConfig, tensors: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.config = config
        self.embed = _param(tensors["model.embed_tokens.weight"])
        self.layers = nn.ModuleList(
            DecoderLayer(config, _layer_weights(tensors, i)) for i in range(config.num_layers)
        )
        self.norm = _param(tensors["model.norm.weight"])
        head = tensors.get("lm_head.weight")
        self.lm_head = self.embed if config.tie_embeddings or head is None else _param(head)
        cos, sin = rope_tables(config)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    @classmethod
    def from_tensors(
        cls,
        config: ModelConfig,
        tensors: Mapping[str, torch.Tensor],
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> LlamaModel:
        """Build the model from HF-named tensors, cast to ``dtype`` on ``device``."""
        cast = {k: v.to(device=device, dtype=dtype) for k, v in tensors.items()}
        model = cls(config, cast)
        model.rope_cos = model.rope_cos.to(device=device, dtype=dtype)
        model.rope_sin = model.rope_sin.to(device=device, dtype=dtype)
        return model.eval()

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    def prepack(self, batch_hint: int = PREPACK_BATCH_HINT) -> None:
        """Keep every projection and the LM head in oneDNN's prepacked layout (CPU).

        Why: at decode sizes (1-64 rows) oneDNN on prepacked weights beats MKL's sgemm on
        the plain ones (measured on SmolLM2's shapes, two threads, quiet machine: all
        projections and the head 98 against 162 ms at 32 rows, 49 against 99 at 8, 37
        against 45 at 1; 1,035 against 1,146 ms at 512), as vLLM-CPU does with its own
        oneDNN handles. The plain weights are released (they stay alive only if the caller
        keeps the checkpoint); a tied LM head gets its own packed copy, since the embedding
        lookup needs the plain table."""

        def pack(w: torch.Tensor) -> nn.Parameter:
            if w.is_mkldnn:
                return _param(w)
            return _param(torch.ops.mkldnn._reorder_linear_weight(w.detach(), batch_hint))

        for layer in self.layers:
            for name in ("qkv_weight", "o_weight", "gate_up_weight", "down_weight"):
                setattr(layer, name, pack(getattr(layer, name)))
        self.lm_head = pack(self.lm_head)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        kv_cache: torch.Tensor,
        meta: AttentionMeta,
        sample_rows: torch.Tensor,
    ) -> torch.Tensor:
        """Float32 logits [len(sample_rows), vocab] for a flattened batch of ``input_ids``
        at ``positions``; ``kv_cache`` is [layers, 2 * kv_heads, num_slots, head_dim]."""
        x = F.embedding(input_ids, self.embed)
        cos = self.rope_cos[positions].unsqueeze(1)
        sin = self.rope_sin[positions].unsqueeze(1)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, kv_cache[i], meta)
        return self.logits(x.index_select(0, sample_rows))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        h = rms_norm(hidden, self.norm, self.config.rms_norm_eps)
        return linear(h, self.lm_head).float()


def _layer_weights(tensors: Mapping[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    prefix = f"model.layers.{index}."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def rope_tables(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position: cos, and sin with the first half negated, so that rotating the two halves
    of a head is ``x * cos + roll(x, half) * sin`` (HF's ``rotate_half`` form), in float32."""
    dim = config.head_dim
    inv_freq = 1.0 / (
        config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)
    )
    freqs = torch.outer(torch.arange(config.max_position, dtype=torch.float32), inv_freq)
    cos = torch.cat([freqs.cos(), freqs.cos()], dim=-1)
    sin = torch.cat([-freqs.sin(), freqs.sin()], dim=-1)
    return cos, sin
