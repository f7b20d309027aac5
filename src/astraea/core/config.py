"""Scheduler mechanism settings: memory, batch limits and chunking; nothing policy-specific."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Limits of one engine replica, in the units vLLM uses.

    Defaults follow vLLM V1 online serving on a data-centre GPU (16-token blocks, chunked
    prefill on, 8192 batched tokens, 256 sequences); the KV sizes come from a cost profile
    or from the engine's preallocated pool.
    """

    num_device_blocks: int
    num_host_blocks: int = 0
    block_size: int = 16
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256
    enable_chunked_prefill: bool = True
    max_steps_per_plan: int = 1  # >1 lets a pure-decode batch run several steps per plan
    max_prefetch_blocks_per_step: int = 0  # swap-ins ahead of tool returns per step; 0: no cap
    # Policies without head-of-line blocking try later jobs when one does not fit; a cap on
    # those misses per step bounds a step's cost under overload. 0: no cap (the default: a cap
    # of 64 cost astraea half its gain at 4 jobs/s on the InferCept mix).
    max_admission_skips: int = 0
    # KV copies between tiers run on copy engines beside compute (CUDA streams, as vLLM's
    # offloading connector and InferCept do): the executor reports each copy when it is done
    # (``StepResult.copies_done``). False: copies finish before the step computes (serial).
    overlap_copies: bool = False

    def __post_init__(self) -> None:
        for name in (
            "num_device_blocks",
            "block_size",
            "max_num_batched_tokens",
            "max_num_seqs",
            "max_steps_per_plan",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.max_admission_skips, int) or self.max_admission_skips < 0:
            raise ValueError("max_admission_skips must be an integer >= 0")
        if not isinstance(self.max_prefetch_blocks_per_step, int) or (
            self.max_prefetch_blocks_per_step < 0
        ):
            raise ValueError("max_prefetch_blocks_per_step must be an integer >= 0")
        if not isinstance(self.num_host_blocks, int) or self.num_host_blocks < 0:
            raise ValueError(
                f"num_host_blocks must be an integer >= 0, got {self.num_host_blocks!r}"
            )
