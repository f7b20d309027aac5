"""What the mechanism counts while it runs: preemptions, recompute, swaps, KV decisions."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SchedulerCounters:
    preemptions: int = 0
    recomputed_tokens: int = 0
    swapped_out_blocks: int = 0
    swapped_in_blocks: int = 0
    swap_fallbacks: int = 0  # SWAP asked for but the host tier was full: discarded instead
    prefetched_blocks: int = 0  # swapped in ahead of a tool's return
    reclaimed_preserved: int = 0  # preserved KV of idle jobs taken back under memory pressure
    kv_actions: dict[str, int] = field(default_factory=dict)
