"""Multi-step decoding: let a pure-decode batch run several engine steps under one plan.

When a plan has no prefill and no swap, every sequence gains exactly one token per step and
nothing the scheduler decides can change until a call finishes, memory runs short, or an
outside event (an arrival, a tool return) happens. So the plan may say "repeat up to k
times": k stops at the first call to finish and at the memory available, and the executor
stops at the next outside event. The simulator uses this to skip thousands of identical
scheduling rounds; the result is exactly that of the one-step loop (a test holds it there).
"""

from __future__ import annotations

from astraea.core.job import Job
from astraea.core.kv_cache import KVCacheManager, blocks_for
from astraea.core.plan import StepPlan


def extend_decode_steps(
    plan: StepPlan, jobs: dict[str, Job], kv: KVCacheManager, max_steps: int
) -> None:
    """Raise ``plan.num_steps`` as far as is safe and allocate the blocks those steps need
    (the sequences that got more blocks carry their grown block tables)."""
    if max_steps <= 1 or not plan.seqs or plan.num_prefill_tokens or plan.copies:
        return
    batch = [jobs[s.job_id] for s in plan.seqs]
    steps = min(max_steps, min(j.remaining_output_tokens for j in batch))
    if steps <= 1:
        return
    bs = kv.block_size
    # KV length each sequence reaches after k steps: kv_len + k - 1.
    base = [(s.kv_len - 1, kv.num_blocks(s.job_id)) for s in plan.seqs]
    available = kv.num_free_device_blocks

    def blocks_needed(k: int) -> int:
        return sum(max(0, blocks_for(length + k, bs) - held) for length, held in base)

    if blocks_needed(steps) > available:
        low, high = 1, steps  # blocks_needed(1) == 0 <= available
        while low < high:
            mid = (low + high + 1) // 2
            if blocks_needed(mid) <= available:
                low = mid
            else:
                high = mid - 1
        steps = low
    if steps <= 1:
        return
    seqs = plan.seqs
    for i, (job, (length, held)) in enumerate(zip(batch, base, strict=True)):
        if blocks_for(length + steps, bs) > held:
            kv.ensure_tokens(job.job_id, length + steps)
            seqs[i] = seqs[i]._replace(block_table=kv.table(job.job_id))
    plan.num_steps = steps
