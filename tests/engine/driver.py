"""Hand-driven step plans over the scheduler's own KV accounting, for runner tests.

It emits exactly what ``astraea.core.Scheduler`` would hand an executor (``ScheduledSeq``s
over ``KVCacheManager`` block tables, ``BlockCopy`` swaps) without job specs or a clock, so a
test chooses every chunk and every swap itself."""

from __future__ import annotations

from astraea.core.kv_cache import BlockCopy, KVCacheManager
from astraea.core.plan import ScheduledSeq, StepPlan


class Driver:
    def __init__(self, runner, num_host_blocks: int = 0) -> None:
        self.runner = runner
        cfg = runner.config
        self.kv = KVCacheManager(cfg.num_gpu_blocks, num_host_blocks, cfg.block_size)
        self.tokens: dict[str, list[int]] = {}
        self.computed: dict[str, int] = {}

    def add(self, job_id: str, tokens: list[int]) -> None:
        self.tokens[job_id] = list(tokens)
        self.computed[job_id] = 0

    def seq(self, job_id: str, n: int | None = None) -> ScheduledSeq:
        """The job's next ``n`` uncomputed tokens (default: all of them)."""
        before = self.computed[job_id]
        if n is None:
            n = len(self.tokens[job_id]) - before
        self.kv.ensure_tokens(job_id, before + n)
        samples = before + n == len(self.tokens[job_id])
        return ScheduledSeq(job_id, before, n, samples, self.kv.table(job_id))

    def plan(self, *seqs: ScheduledSeq, swap_out=(), swap_in=()) -> StepPlan:
        return StepPlan(seqs=list(seqs), copies=[*swap_out, *swap_in])

    def run(self, plan: StepPlan) -> dict[str, int]:
        """Execute and book: computed positions advance, sampled tokens are appended."""
        out = self.runner.execute(plan, self.tokens)
        self.book(plan, out)
        return out

    def logits(self, plan: StepPlan):
        jobs, logits = self.runner.compute_logits(plan, self.tokens)
        self.book(plan, {})
        return dict(zip(jobs, logits, strict=True))

    def book(self, plan: StepPlan, sampled: dict[str, int]) -> None:
        for s in plan.seqs:
            self.computed[s.job_id] = s.num_computed_before + s.num_new_tokens
        for job_id, token in sampled.items():
            self.tokens[job_id].append(token)

    def swap_out(self, job_id: str) -> BlockCopy:
        return self.kv.swap_out(job_id, self.computed[job_id])

    def swap_in(self, job_id: str) -> BlockCopy:
        return self.kv.swap_in(job_id)

    def discard(self, job_id: str) -> None:
        """Drop the job's KV: its next plan recomputes the context from position 0."""
        self.kv.free(job_id)
        self.computed[job_id] = 0

    def decode_all(self, job_ids: list[str], steps: int) -> None:
        for _ in range(steps):
            self.run(self.plan(*(self.seq(j) for j in job_ids)))
