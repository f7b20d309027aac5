"""Settings of the torch engine: what the model is (``ModelConfig``, read from the weights'
metadata) and how it is served (``EngineConfig``, chosen by the user). Pure data, no torch, so
the CLI and the simulator can build and print them without loading anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astraea.core.config import SchedulerConfig

DTYPES = ("auto", "bfloat16", "float32", "float16")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Shape of a Llama-architecture decoder (the fields every loader must fill)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position: int = 2048
    tie_embeddings: bool = True
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "max_position",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {self.head_dim}")

    @property
    def q_per_kv(self) -> int:
        """Query heads sharing one KV head (the GQA group size)."""
        return self.num_heads // self.num_kv_heads

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """KV cache bytes one token takes over all layers (K and V)."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * dtype_bytes


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine runs: device, precision and the fixed KV pool sizes.

    The block counts fix the memory the KV tiers take for the engine's whole life; the
    scheduler's ``SchedulerConfig`` must use the same ``block_size`` and block counts.
    """

    device: str = "cpu"  # "cpu" or "cuda"
    dtype: str = "auto"  # weights, activations, KV; auto: bf16 where the hardware has it
    block_size: int = 16  # tokens per KV block
    num_gpu_blocks: int = 1024  # device tier (RAM on the CPU)
    num_cpu_blocks: int = 0  # host tier for swapped-out KV
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    num_threads: int | None = None  # torch intra-op threads on the CPU; None: every usable core
    # While other tasks want the CPU, one thread per team and large steps split over
    # one-thread workers (threads.py): a full OpenMP team stalls in its barriers whenever
    # any of its cores is taken.
    adaptive_threads: bool = True
    # Every forward pass split by sequence across this many Python threads (``num_threads``
    # // workers intra-op threads each, at least 1). Kept for comparison: each worker streams
    # all the weights, so on a quiet machine one team (``num_workers=1``) is faster.
    num_workers: int = 1
    # Linear weights in oneDNN's prepacked layout on the CPU in float32 (model.prepack):
    # faster at decode sizes; False keeps the checkpoint's plain tensors (shared, no copy).
    prepack_weights: bool = True

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        for name in ("block_size", "num_gpu_blocks", "max_num_seqs", "max_num_batched_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.num_cpu_blocks, int) or self.num_cpu_blocks < 0:
            raise ValueError(f"num_cpu_blocks must be an integer >= 0, got {self.num_cpu_blocks}")
        if not isinstance(self.num_workers, int) or self.num_workers < 1:
            raise ValueError(f"num_workers must be an integer >= 1, got {self.num_workers!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")

    def kv_pool_bytes(self, model: ModelConfig, dtype_bytes: int) -> int:
        """Bytes the device tier takes: fixed at start-up, never grows."""
        return self.num_gpu_blocks * self.block_size * model.kv_bytes_per_token(dtype_bytes)

    def scheduler_config(self, **overrides: Any) -> SchedulerConfig:
        """The scheduler settings that must agree with this engine's pools and limits."""
        fields: dict[str, Any] = dict(
            num_device_blocks=self.num_gpu_blocks,
            num_host_blocks=self.num_cpu_blocks,
            block_size=self.block_size,
            max_num_batched_tokens=self.max_num_batched_tokens,
            max_num_seqs=self.max_num_seqs,
        )
        fields.update(overrides)
        return SchedulerConfig(**fields)
