"""The executor's torch half: run one ``StepPlan`` on the model and return sampled tokens.

The runner owns the model and the KV tiers and nothing else: which job runs, which blocks it
holds and where its tokens come from are the scheduler's and the caller's business. Per step
it applies the plan's block copies, builds the flattened batch from the plan and the caller's
token lists, runs one forward pass, and samples. The engine loop around it (wall clock,
``Scheduler.update``, stop conditions) is a separate piece.
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from astraea.core.plan import ScheduledSeq, StepPlan
from astraea.engine.batch import StepBatch, build_batch
from astraea.engine.config import EngineConfig
from astraea.engine.kv_pool import KVPool
from astraea.engine.model import LlamaModel, prepack_supported
from astraea.engine.split import RowSplit
from astraea.engine.threads import ThreadGovernor
from astraea.engine.weights import Checkpoint, load_checkpoint

# (logits [rows, vocab] float32, job id per row) -> token id per row
Sampler = Callable[[torch.Tensor, Sequence[str]], list[int]]

# A lone first chunk of at least this many rows may be split by rows (split.py).
SPLIT_MIN_ROWS = 256
# While the machine is shared, a step of several sequences and at least this many rows is
# split by sequence over one-thread workers (each reads all the weights: at batch 8 decode
# that cost more than the second share gained, at 32 it paid).
WORKER_MIN_ROWS = 16

_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


class CopyError(RuntimeError):
    """A plan's KV copies between tiers failed: every job they touch has lost its KV, so
    the step failed as a whole, not because of one sequence."""


def greedy(logits: torch.Tensor, jobs: Sequence[str]) -> list[int]:
    """Arg-max sampling; temperature / top-p samplers plug in with the same signature."""
    return logits.argmax(dim=-1).tolist()


def split_by_cost(seqs: Sequence[ScheduledSeq], parts: int) -> list[list[ScheduledSeq]]:
    """Whole sequences into at most ``parts`` non-empty groups of about equal work (rows to
    compute, plus a little per sequence and per context token), plan order kept inside each
    group; the groups touch disjoint KV slots, so they can run at the same time."""
    if parts <= 1 or len(seqs) <= 1:
        return [list(seqs)]
    load = [0.0] * parts
    owner: dict[int, int] = {}
    by_cost = sorted(range(len(seqs)), key=lambda i: -_cost(seqs[i]))
    for i in by_cost:
        g = min(range(parts), key=load.__getitem__)
        owner[i] = g
        load[g] += _cost(seqs[i])
    groups = [[s for i, s in enumerate(seqs) if owner[i] == g] for g in range(parts)]
    return [g for g in groups if g]


def _cost(seq: ScheduledSeq) -> float:
    return seq.num_new_tokens + 4 + seq.kv_len / 64


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc's ``malloc_trim``): weights of a few MB
    each live on the heap, and freeing them alone leaves the pages counted in RSS (the
    bundled model: 1,072 against 932 MB after start with its weights prepacked)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16); without it bf16 matmuls
    are emulated and run several times slower than fp32."""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def resolve_dtype(config: EngineConfig) -> torch.dtype:
    """The torch dtype for ``config.dtype``; ``auto`` is bf16 where the hardware has it."""
    if config.dtype != "auto":
        return _DTYPES[config.dtype]
    if config.device == "cuda" or cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


class ModelRunner:
    """Model + KV tiers; ``execute`` runs one step of a scheduler plan."""

    def __init__(self, model: LlamaModel, config: EngineConfig, sampler: Sampler = greedy) -> None:
        # One team sized by the governor, set on whichever thread runs the pass (the
        # server's engine thread included); while other tasks want the CPU, a step with
        # several sequences is split over one-thread workers (threads.py).
        self.threads = ThreadGovernor(config.num_threads, adaptive=config.adaptive_threads)
        self._workers: ThreadPoolExecutor | None = None
        if config.num_workers > 1:
            self._workers = ThreadPoolExecutor(config.num_workers, "astraea-forward")
        self.model = model
        self.config = config
        self.device = torch.device(config.device)
        if (
            config.prepack_weights
            and self.device.type == "cpu"
            and model.dtype == torch.float32
            and prepack_supported()
        ):
            model.prepack()  # Engine trims the plain weights' pages once it drops them
        self.pool = KVPool(model.config, config, model.dtype, self.device)
        self.sampler = sampler
        self._row_split: RowSplit | None = None
        # Split a lone first chunk by rows (split.py): "contended" (while the governor has
        # shrunk the team), "always" or "never"; from ``split_min_rows`` rows on.
        self.split_prefill = "contended"
        self.split_min_rows = SPLIT_MIN_ROWS
        self.forward_seconds = 0.0  # wall time inside model forward passes, all steps

    @classmethod
    def from_checkpoint(
        cls, checkpoint: Checkpoint, config: EngineConfig, sampler: Sampler = greedy
    ) -> ModelRunner:
        model = LlamaModel.from_tensors(
            checkpoint.config, checkpoint.tensors, resolve_dtype(config), config.device
        )
        return cls(model, config, sampler)

    @classmethod
    def load(
        cls, path: str | Path | None = None, config: EngineConfig | None = None
    ) -> tuple[ModelRunner, Checkpoint]:
        """Load weights (default: the bundled SmolLM2 GGUF) and build a runner; the
        checkpoint comes back for its tokenizer (its float32 tensors may be dropped)."""
        checkpoint = load_checkpoint(path)
        return cls.from_checkpoint(checkpoint, config or EngineConfig()), checkpoint

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def execute(
        self, plan: StepPlan, token_ids: Mapping[str, Sequence[int]], step: int = 0
    ) -> dict[str, int]:
        """Run step ``step`` of ``plan``; returns the sampled token of each sequence that
        samples. ``token_ids[job]`` must hold the job's tokens up to the last position
        computed (for ``step`` > 0: including the tokens sampled by the earlier steps)."""
        jobs, logits = self.compute_logits(plan, token_ids, step)
        if not jobs:
            return {}
        return dict(zip(jobs, self.sampler(logits, jobs), strict=True))

    def compute_logits(
        self, plan: StepPlan, token_ids: Mapping[str, Sequence[int]], step: int = 0
    ) -> tuple[list[str], torch.Tensor]:
        """``execute`` without the sampling: the sampling jobs and their float32 logits."""
        if step == 0:
            try:
                self.pool.apply(plan.copies)
            except Exception as exc:
                raise CopyError(f"the plan's KV copies failed: {exc}") from exc
        elif step >= plan.num_steps:
            raise ValueError(f"step {step} of a {plan.num_steps}-step plan")
        if not plan.seqs:
            return [], torch.empty(0, self.model.config.vocab_size)
        layout = self.threads.layout()
        fixed = self.config.num_workers
        parts = fixed if fixed > 1 else self._worker_parts(plan, layout.workers)
        groups = split_by_cost(plan.seqs, parts)
        batches = [build_batch(g, token_ids, self.block_size, step, self.device) for g in groups]
        jobs = [job for batch in batches for job in batch.sample_jobs]
        if len(batches) == 1:
            return jobs, self.forward(batches[0])
        started = time.perf_counter()
        per_worker = max(1, (self.config.num_threads or 1) // len(batches)) if fixed > 1 else 1
        if self._workers is None:  # one-thread workers while the machine is shared
            self._workers = ThreadPoolExecutor(self.threads.max_threads, "astraea-forward")
        futures = [self._workers.submit(self._run, b, per_worker) for b in batches[1:]]
        try:
            first = self._run(batches[0], per_worker)  # the calling thread takes a group
        finally:
            parts_out = [f.result() for f in futures]
        self.forward_seconds += time.perf_counter() - started
        return jobs, torch.cat([first, *parts_out])

    def _worker_parts(self, plan: StepPlan, workers: int) -> int:
        """How many one-thread workers split this step by sequence (1: none)."""
        if workers < 2 or self.device.type != "cpu":
            return 1
        rows = sum(s.num_new_tokens for s in plan.seqs)
        return workers if rows >= WORKER_MIN_ROWS else 1

    def forward(self, batch: StepBatch) -> torch.Tensor:
        """Logits of the batch's sampling rows (float32 [rows, vocab])."""
        started = time.perf_counter()
        logits = self._run(batch)
        self.forward_seconds += time.perf_counter() - started
        return logits

    @torch.inference_mode()  # thread-local: entered on whichever thread runs the pass
    def _run(self, batch: StepBatch, threads: int | None = None) -> torch.Tensor:
        team = self.threads.apply(threads)
        max_pos = self.model.config.max_position
        if batch.num_rows and int(batch.positions.max()) >= max_pos:
            raise ValueError(f"position beyond the model's maximum ({max_pos})")
        if threads is None and self._splits(batch, team):
            if self._row_split is None:
                self._row_split = RowSplit(self.threads.max_threads)
            [chunk] = batch.meta.prefills
            assert chunk.mask is not None
            hidden = self._row_split.forward(
                self.model,
                batch.input_ids,
                batch.positions,
                self.pool.device_cache,
                batch.meta.slot_mapping,
                chunk.mask,
            )
            return self.model.logits(hidden.index_select(0, batch.sample_rows))
        return self.model(
            batch.input_ids, batch.positions, self.pool.device_cache, batch.meta, batch.sample_rows
        )

    def _splits(self, batch: StepBatch, team: int) -> bool:
        """Whether this pass is a lone prompt's first chunk to split by rows (split.py)."""
        meta = batch.meta
        if self.split_prefill == "never" or self.device.type != "cpu":
            return False
        if self.threads.max_threads < 2 or meta.num_decode or len(meta.prefills) != 1:
            return False
        chunk = meta.prefills[0]
        if chunk.context_slots is not None or chunk.mask is None:
            return False
        if batch.num_rows < self.split_min_rows:
            return False
        return self.split_prefill == "always" or team < self.threads.max_threads
