"""Cost-model profiles: the time of one engine iteration for a (model, accelerator, TP) triple.

Built-in profiles are derived from public model shapes and accelerator specifications and
cross-checked against published profiles; every number's origin is in its ``source`` text
and in docs/profiles.md. A profile can also be a JSON file (``astraea profile`` fits one to
our engine). The model itself (``CostProfile``) is in ``astraea.sim.cost_model``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from astraea.sim.cost_model import (
    DEFAULT_PROFILE,
    GIB,
    CostProfile,
    kv_bytes_per_token,
    kv_capacity_tokens,
)

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "CostProfile",
    "get_profile",
    "kv_bytes_per_token",
    "kv_capacity_tokens",
    "one_pool",
    "profile_names",
    "save_profile",
]

# ---- derivation of the built-in profiles (numbers explained in docs/profiles.md) -------------

MEM_EFFICIENCY = 0.80  # achievable fraction of peak HBM bandwidth
COMPUTE_EFFICIENCY = 0.60  # achievable fraction of dense BF16 tensor peak in prefill
CPU_PER_SEQ_S = 20e-6  # per-sequence sampling/bookkeeping not hidden behind the GPU
DECODE_REF_BATCH = 256  # vLLM's default max_num_seqs: batch where c meets the roofline
GPU_MEMORY_UTILIZATION = 0.9  # vLLM default gpu_memory_utilization
ACTIVATION_RESERVE_PER_GPU = 2 * GIB
HOST_SWAP_PER_GPU = 128 * GIB  # InferCept's --swap-space 128 (GiB) for its 6B runs
# InferCept (WukLab/InferCept vllm/core/solver.py) swaps ~4e-5 s/token for GPT-J-6B on A100.
_GPTJ_KV_BYTES = 2 * 28 * 4096 * 2  # 28 layers, hidden 4096, fp16
A100_HOST_LINK = _GPTJ_KV_BYTES / 4e-5  # ~11.5 GB/s effective over PCIe Gen4 x16
H100_HOST_LINK = 2 * A100_HOST_LINK  # PCIe Gen5 doubles the Gen4 rate


@dataclass(frozen=True, slots=True)
class _Model:
    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    config: str

    @property
    def params(self) -> int:
        kv_dim = self.kv_heads * (self.hidden // self.heads)
        per_layer = 2 * self.hidden * (self.hidden + kv_dim) + 3 * self.hidden * self.intermediate
        return (
            2 * self.vocab * self.hidden + self.layers * (per_layer + 2 * self.hidden) + self.hidden
        )


@dataclass(frozen=True, slots=True)
class _Gpu:
    name: str
    memory_bytes: int  # usable per GPU (PyTorch total_memory of an 80 GB part)
    hbm_bytes_per_s: float
    bf16_flops: float  # dense
    host_link_bytes_per_s: float  # effective, per GPU
    step_overhead_s: float  # CPU + kernel-launch time per step beyond weight streaming
    spec: str


_HF = "https://huggingface.co/meta-llama/{}/blob/main/config.json"
LLAMA2_7B = _Model("Llama-2-7B", 32, 4096, 11008, 32, 32, 32000, _HF.format("Llama-2-7b-hf"))
LLAMA2_13B = _Model("Llama-2-13B", 40, 5120, 13824, 40, 40, 32000, _HF.format("Llama-2-13b-hf"))
LLAMA2_70B = _Model("Llama-2-70B", 80, 8192, 28672, 64, 8, 32000, _HF.format("Llama-2-70b-hf"))
LLAMA31_8B = _Model("Llama-3.1-8B", 32, 4096, 14336, 32, 8, 128256, _HF.format("Llama-3.1-8B"))
_MEM = int(79.15 * GIB)
A100 = _Gpu("A100-80GB SXM", _MEM, 2.039e12, 312e12, A100_HOST_LINK, 2.5e-3, "A100 datasheet")
H100 = _Gpu("H100-80GB SXM", _MEM, 3.35e12, 989.4e12, H100_HOST_LINK, 2.0e-3, "H100 datasheet")
# Vidur data/profiling/network/a100_dgx/all_reduce.csv (NCCL, one node): small-message
# latency (s) and large-message algorithm bandwidth (B/s) per TP degree.
A100_ALL_REDUCE = {2: (45e-6, 172e9), 4: (20e-6, 127e9)}

_SOURCE = """\
{key}: {m.name} on {tp}x {g.name} (TP={tp}); derivations and references: docs/profiles.md
shape [read: {m.config}]: layers={m.layers} hidden={m.hidden} ffn={m.intermediate} \
heads={m.heads} kv_heads={m.kv_heads} vocab={m.vocab} -> params={p:,} [derived]
accelerator [read: NVIDIA {g.spec}]: HBM {hbm_tb:.3g} TB/s, dense BF16 {tflops:.0f} TFLOPS, \
{mem_gib:.2f} GiB usable/GPU
a = {wgb:.2f} GB fp16 weights/GPU / ({me:.0%} x HBM) = {stream_ms:.2f} ms [derived] + step \
overhead {ovh_ms:.1f} ms [chosen, from Vidur profiles] + {n_ar} all-reduces x {ar_us:.0f} us \
[read: Vidur a100_dgx all_reduce.csv] = {a_ms:.2f} ms
b = 2 x {pg:.2f}e9 FLOP / ({ce:.0%} x {tflops:.0f} TFLOPS x {tp}) + all-reduce {tok_us:.1f} us \
= {b_us:.1f} us/token [derived]
c = b - {stream_ms:.2f} ms / {ref} + {cpu_us:.0f} us CPU = {c_us:.1f} us/sequence [derived: decode \
roofline chord]
e = {kvb:,} B / ({tp} x {me:.0%} x HBM) = {e_ns:.1f} ns per attended KV token [derived]
kv_bytes_per_token = 2 x {m.layers} x {m.kv_heads} x {hd} x 2 B (fp16) = {kvb:,} [derived]
kv_capacity = ({util} x {tp} x {mem_gib:.2f} GiB - {wtot:.2f} GB weights - {tp} x \
{act_gib:.0f} GiB activations) / {kvb:,} B = {cap:,} tokens [derived; {util} = vLLM \
gpu_memory_utilization default]
host_kv_capacity = {tp} x {swap_gib:.0f} GiB / {kvb:,} B = {host:,} tokens [chosen: InferCept \
--swap-space 128 per GPU]
host_link = {tp} x {link_gb:.2f} GB/s [derived: InferCept 4e-5 s/token for GPT-J-6B on A100 \
PCIe Gen4, WukLab/InferCept vllm/core/solver.py; x2 for PCIe Gen5]"""


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def _derive(key: str, m: _Model, g: _Gpu, tp: int) -> CostProfile:
    """Build one profile from shapes and specs; the source text records every step."""
    p, hd = m.params, m.hidden // m.heads
    kvb = kv_bytes_per_token(m.layers, m.kv_heads, hd)
    stream = 2 * p / tp / (MEM_EFFICIENCY * g.hbm_bytes_per_s)  # fp16 weights per GPU
    ar_lat, ar_bw = A100_ALL_REDUCE[tp] if tp > 1 else (0.0, math.inf)
    n_ar = 2 * m.layers if tp > 1 else 0  # TP: one all-reduce after attention, one after MLP
    tok_comm = n_ar * 2 * m.hidden / ar_bw  # fp16 activations of one token per all-reduce
    a = _sig(stream + g.step_overhead_s + n_ar * ar_lat)
    b_raw = 2 * p / (COMPUTE_EFFICIENCY * g.bf16_flops * tp) + tok_comm
    c = _sig(max(0.0, b_raw - stream / DECODE_REF_BATCH) + CPU_PER_SEQ_S)
    b = _sig(b_raw)
    e = _sig(kvb / (tp * MEM_EFFICIENCY * g.hbm_bytes_per_s))
    cap = kv_capacity_tokens(
        tp * g.memory_bytes, 2 * p, kvb, GPU_MEMORY_UTILIZATION, tp * ACTIVATION_RESERVE_PER_GPU
    )
    host = tp * HOST_SWAP_PER_GPU // kvb
    link = tp * g.host_link_bytes_per_s
    src = _SOURCE.format(
        key=key, m=m, g=g, tp=tp, p=p, hd=hd, kvb=kvb, cap=cap, host=host, n_ar=n_ar,
        hbm_tb=g.hbm_bytes_per_s / 1e12, tflops=g.bf16_flops / 1e12, mem_gib=g.memory_bytes / GIB,
        wgb=2 * p / tp / 1e9, wtot=2 * p / 1e9, pg=p / 1e9, stream_ms=stream * 1e3,
        ar_us=ar_lat * 1e6, ovh_ms=g.step_overhead_s * 1e3, a_ms=a * 1e3, tok_us=tok_comm * 1e6,
        b_us=b * 1e6, c_us=c * 1e6, e_ns=e * 1e9, link_gb=g.host_link_bytes_per_s / 1e9,
        me=MEM_EFFICIENCY, ce=COMPUTE_EFFICIENCY, ref=DECODE_REF_BATCH, cpu_us=CPU_PER_SEQ_S * 1e6,
        util=GPU_MEMORY_UTILIZATION, act_gib=ACTIVATION_RESERVE_PER_GPU / GIB,
        swap_gib=HOST_SWAP_PER_GPU / GIB,
    )  # fmt: skip
    return CostProfile(key, m.name, f"{tp}x {g.name}", tp, a, b, c, e, kvb, cap, host, link, src)


PROFILES: dict[str, CostProfile] = {
    p.name: p
    for p in (
        _derive("llama2-7b-a100", LLAMA2_7B, A100, 1),
        _derive("llama2-13b-2xa100", LLAMA2_13B, A100, 2),
        _derive("llama2-70b-4xa100", LLAMA2_70B, A100, 4),
        _derive("llama31-8b-h100", LLAMA31_8B, H100, 1),
    )
}


def profile_names() -> list[str]:
    """Names of the built-in profiles, sorted."""
    return sorted(PROFILES)


ONE_POOL = "+one-pool"


def one_pool(profile: CostProfile) -> CostProfile:
    """The same engine with its device and host KV as one device pool: what it would do if
    device memory were as large as both tiers and nothing had to be copied. The reference
    for how close a policy gets to the memory limit (``two-tier-limit``)."""
    return dataclasses.replace(
        profile,
        name=profile.name + ONE_POOL,
        kv_capacity_tokens=profile.kv_capacity_tokens + profile.host_kv_capacity_tokens,
        host_kv_capacity_tokens=0,
        source=f"{profile.source}\n{ONE_POOL}: device KV = device + host KV, no host tier",
    )


FREE_LINK = "+free-link"
# Bytes per second of a link that takes no time (finite, so profiles stay valid JSON).
INSTANT_LINK = 1e18


def free_link(profile: CostProfile) -> CostProfile:
    """The same engine with KV copies between its tiers taking no time. Unlike
    ``one_pool``, a call still computes only on device memory, so this is what a perfect use
    of the host tier could give, device memory kept as it is (``free-link``)."""
    return dataclasses.replace(
        profile,
        name=profile.name + FREE_LINK,
        host_link_bytes_per_s=INSTANT_LINK,
        source=f"{profile.source}\n{FREE_LINK}: copies between the tiers take no time",
    )


VARIANTS = {ONE_POOL: one_pool, FREE_LINK: free_link}


def get_profile(name_or_path: str) -> CostProfile:
    """A built-in profile by name (``NAME+one-pool``, ``NAME+free-link``: that variant of
    it), or one loaded from a JSON file written by ``to_dict``."""
    if name_or_path in PROFILES:
        return PROFILES[name_or_path]
    for suffix, variant in VARIANTS.items():
        if name_or_path.endswith(suffix):
            return variant(get_profile(name_or_path[: -len(suffix)]))
    path = Path(name_or_path)
    if not (path.suffix == ".json" or path.exists()):
        raise ValueError(
            f"unknown cost profile {name_or_path!r}: use one of {profile_names()} "
            "or a path to a profile JSON file"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read cost profile file {str(path)!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"cost profile file {str(path)!r} is not valid JSON: {exc}") from exc
    try:
        return CostProfile.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid cost profile file {str(path)!r}: {exc}") from exc


def save_profile(profile: CostProfile, path: str | Path) -> Path:
    """Write ``profile`` as the JSON file ``get_profile(path)`` reads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path
