"""Fit the simulator's cost model to this engine by timing real steps over a grid of shapes.

Why: the simulator and the policies' service-time predictions both read a ``CostProfile``
(``t = a + b*prefill_tokens + c*decode_seqs + e*sum_kv_tokens``). The built-in profiles are
derived from GPU datasheets; this one is measured on the engine as it runs here, so a
simulation of this engine, and the engine's own policies, predict with its real costs.

Each grid point is a real ``StepPlan`` over block tables from the scheduler's own
``KVCacheManager``, run by the real ``ModelRunner`` (batch building, forward pass, greedy
sampling). A decode at context ``L`` needs ``L`` cached tokens, but not their values: the
step costs the same whatever the cache holds, so contexts are allocated, never prefilled.
The fit is least squares on relative errors with non-negative coefficients.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from astraea.core.kv_cache import BlockCopy, CopyDirection, KVCacheManager, blocks_for
from astraea.core.plan import ScheduledSeq, StepPlan
from astraea.engine.kv_pool import KVPool
from astraea.engine.runner import ModelRunner
from astraea.predict.service import ServiceTimeModel
from astraea.sim.profiles import CostProfile, get_profile

_MIN_COEF = 1e-9  # CostProfile needs a > 0 and b > 0; a fit of exactly 0 is floored here


@dataclass(frozen=True, slots=True)
class Shape:
    """One batch to time: prefill chunks ``(cached_before, new_tokens)`` plus
    ``decode_batch`` single-token decodes, each over ``decode_context`` cached tokens."""

    chunks: tuple[tuple[int, int], ...] = ()
    decode_batch: int = 0
    decode_context: int = 0

    @property
    def features(self) -> tuple[int, int, int]:
        """(prefill_tokens, decode_seqs, sum_kv_tokens), counted as the scheduler counts."""
        prefill = sum(n for _, n in self.chunks)
        kv = sum(b + n for b, n in self.chunks) + self.decode_batch * (self.decode_context + 1)
        return prefill, self.decode_batch, kv

    def lengths(self) -> list[int]:
        """KV length of every sequence after the step."""
        return [b + n for b, n in self.chunks] + [self.decode_context + 1] * self.decode_batch

    def label(self) -> str:
        parts = [f"prefill {n}" + (f"@{b}" if b else "") for b, n in self.chunks]
        if self.decode_batch:
            parts.append(f"decode {self.decode_batch}x{self.decode_context}")
        return " + ".join(parts)


@dataclass(frozen=True, slots=True)
class Measurement:
    shape: Shape
    seconds: float  # median over the repeats
    samples: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Fit:
    a: float
    b: float
    c: float
    e: float
    r2: float  # on the raw times
    rel_errors: tuple[float, ...]  # (fitted - measured) / measured, per point

    @property
    def max_rel_error(self) -> float:
        return max(abs(r) for r in self.rel_errors)


@dataclass(frozen=True, slots=True)
class EngineProfile:
    profile: CostProfile
    fit: Fit
    measurements: tuple[Measurement, ...]
    host_link_bytes_per_s: float


def profile_grid(
    max_tokens: int, max_position: int, block_size: int, quick: bool = False
) -> list[Shape]:
    """Prefill chunks of 16..512 tokens (first chunks and later ones over a cached context),
    decode batches of 1..32 over 64..1024 cached tokens, and a few mixed steps; points that
    do not fit the KV pool (``max_tokens``) or the model's positions are left out."""
    if quick:
        prefill, later = [8, 32], [(16, 16)]
        batches, contexts = [1, 4], [8, 32]
        mixed = [Shape(((0, 16),), 2, 16)]
    else:
        prefill, later = [16, 32, 64, 128, 256, 512], [(256, 64), (512, 128), (768, 256)]
        batches, contexts = [1, 2, 4, 8, 16, 32], [64, 256, 1024]
        mixed = [
            Shape(((0, 128),), 4, 256),
            Shape(((0, 256),), 8, 512),
            Shape(((256, 64),), 16, 128),
            Shape(((0, 64), (0, 32)), 2, 64),
        ]
    shapes = [Shape(((0, n),)) for n in prefill] + [Shape(((b, n),)) for b, n in later]
    shapes += [Shape((), b, ctx) for ctx in contexts for b in batches]
    shapes += mixed

    def fits(s: Shape) -> bool:
        lengths = s.lengths()
        blocks = sum(blocks_for(n, block_size) for n in lengths)
        return max(lengths) <= max_position and blocks * block_size <= max_tokens

    return [s for s in shapes if fits(s)]


def shape_plan(
    runner: ModelRunner, shape: Shape, seed: int = 0
) -> tuple[StepPlan, dict[str, list[int]]]:
    """A plan of ``shape`` over block tables of a fresh ``KVCacheManager`` (its blocks may
    overlap another plan's: only the timing matters), with random token ids."""
    cfg = runner.config
    kv = KVCacheManager(cfg.num_gpu_blocks, 0, cfg.block_size)
    rng = random.Random(seed)
    vocab = runner.model.config.vocab_size
    tokens: dict[str, list[int]] = {}
    seqs: list[ScheduledSeq] = []
    starts = list(shape.chunks) + [(shape.decode_context, 1)] * shape.decode_batch
    for i, (before, n) in enumerate(starts):
        job = f"p{i}"
        tokens[job] = [rng.randrange(vocab) for _ in range(before + n)]
        kv.ensure_tokens(job, before + n)
        seqs.append(ScheduledSeq(job, before, n, True, kv.table(job)))
    prefill, decode, kv_tokens = shape.features
    plan = StepPlan(
        seqs=seqs, num_prefill_tokens=prefill, num_decode_seqs=decode, sum_kv_tokens=kv_tokens
    )
    return plan, tokens


def time_grid(
    runner: ModelRunner,
    grid: Sequence[Shape],
    repeats: int,
    on_progress: Callable[[float, str], None] | None = None,
) -> list[Measurement]:
    """Median wall time of ``runner.execute`` per shape. The grid is timed in rounds (one
    warm-up, then ``repeats``), so a burst of other work on a shared machine spoils one
    sample of many points rather than every sample of one."""
    plans = [shape_plan(runner, shape, seed=i) for i, shape in enumerate(grid)]
    samples: list[list[float]] = [[] for _ in grid]
    total = len(grid) * (repeats + 1)
    for r in range(repeats + 1):
        for i, (plan, tokens) in enumerate(plans):
            started = time.perf_counter()
            runner.execute(plan, tokens)  # returns Python ints: the device has finished
            if r:  # round 0 warms up allocator and caches
                samples[i].append(time.perf_counter() - started)
            if on_progress is not None:
                on_progress((r * len(grid) + i + 1) / total, grid[i].label())
    return [
        Measurement(shape, statistics.median(s), tuple(s))
        for shape, s in zip(grid, samples, strict=True)
    ]


def nnls(matrix: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative least squares for a handful of columns, exactly: the optimum is the
    unconstrained fit on its own support, so the best non-negative subset fit is it."""
    k = matrix.shape[1]
    best, best_res = np.zeros(k), float(target @ target)
    for size in range(1, k + 1):
        for cols in itertools.combinations(range(k), size):
            sol = np.linalg.lstsq(matrix[:, cols], target, rcond=None)[0]
            if (sol < 0).any():
                continue
            resid = matrix[:, cols] @ sol - target
            if (res := float(resid @ resid)) < best_res:
                best, best_res = np.zeros(k), res
                best[list(cols)] = sol
    return best


def fit_cost_model(features: Sequence[tuple[int, int, int]], seconds: Sequence[float]) -> Fit:
    """Fit ``t = a + b*prefill + c*decode + e*kv`` with a, b, c, e >= 0, minimising relative
    error (step times span 30x; plain least squares would fit only the big prefills)."""
    x = np.column_stack([np.ones(len(features)), np.asarray(features, dtype=float)])
    y = np.asarray(seconds, dtype=float)
    if len(y) < 4 or (y <= 0).any():
        raise ValueError("the fit needs at least 4 points with positive times")
    coef = nnls(x / y[:, None], np.ones_like(y))
    fitted = x @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((fitted - y) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    a, b, c, e = (float(v) for v in coef)
    return Fit(a, b, c, e, r2, tuple(float(v) for v in (fitted - y) / y))


def measure_host_link(runner: ModelRunner, num_blocks: int = 32, repeats: int = 5) -> float:
    """Bytes/s of one-way block copies between a KVPool's tiers (mean of out and in), on a
    scratch pool of the runner's dtype, device and block size."""
    cfg = dataclasses.replace(runner.config, num_gpu_blocks=num_blocks, num_cpu_blocks=num_blocks)
    pool = KVPool(runner.model.config, cfg, runner.model.dtype, runner.device)
    ids = tuple(range(num_blocks))
    out = BlockCopy("profile", ids, ids, num_blocks * cfg.block_size, 0, CopyDirection.OUT)
    back = dataclasses.replace(out, direction=CopyDirection.IN)
    samples = []
    for i in range(repeats + 1):
        started = time.perf_counter()
        pool.apply([out])
        pool.apply([back])
        if runner.device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first round warms up
            samples.append((time.perf_counter() - started) / 2)
    per_token = runner.model.config.kv_bytes_per_token(runner.model.dtype.itemsize)
    return out.num_tokens * per_token / statistics.median(samples)


def accelerator_label(runner: ModelRunner) -> str:
    dtype = str(runner.model.dtype).removeprefix("torch.")
    if runner.device.type == "cuda":
        return f"{torch.cuda.get_device_name(runner.device)}, {dtype}"
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads > 1 else ''}, {dtype}"


def profile_engine(
    runner: ModelRunner,
    model: str,
    *,
    quick: bool = False,
    repeats: int | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    grid: Sequence[Shape] | None = None,
) -> EngineProfile:
    """Time the grid, fit the cost model, measure the host link: a profile of this engine.
    ``on_progress(fraction_done, shape_label)`` follows the timing."""
    cfg = runner.config
    capacity = cfg.num_gpu_blocks * cfg.block_size
    if grid is None:
        grid = profile_grid(capacity, runner.model.config.max_position, cfg.block_size, quick)
    if len(grid) < 4:
        raise ValueError(f"only {len(grid)} grid points fit a KV pool of {capacity} tokens")
    repeats = repeats or (2 if quick else 3)
    measurements = time_grid(runner, grid, repeats, on_progress)
    features = [m.shape.features for m in measurements]
    fit = fit_cost_model(features, [m.seconds for m in measurements])
    link = measure_host_link(runner, num_blocks=8 if quick else 32, repeats=repeats + 2)
    label = accelerator_label(runner)
    per_token = runner.model.config.kv_bytes_per_token(runner.model.dtype.itemsize)
    profile = CostProfile(
        name=f"engine-{model}",
        model=model,
        accelerator=label,
        tensor_parallel=1,
        a=max(fit.a, _MIN_COEF),
        b=max(fit.b, _MIN_COEF),
        c=fit.c,
        e=fit.e,
        kv_bytes_per_token=per_token,
        kv_capacity_tokens=capacity,
        host_kv_capacity_tokens=cfg.num_cpu_blocks * cfg.block_size,
        host_link_bytes_per_s=link,
        source=_source(model, label, fit, measurements, repeats),
    )
    return EngineProfile(profile, fit, tuple(measurements), link)


def _source(
    model: str, label: str, fit: Fit, measurements: Sequence[Measurement], repeats: int
) -> str:
    worst = max(range(len(measurements)), key=lambda i: abs(fit.rel_errors[i]))
    lines = [
        f"measured by `astraea profile` on {time.strftime('%Y-%m-%d')}: {model} on {label}; "
        f"{len(measurements)} grid points, median of {repeats} runs each; non-negative least "
        "squares on relative error",
        f"fit: R^2 = {fit.r2:.4f}, max relative error {fit.max_rel_error:.1%} "
        f"({measurements[worst].shape.label()})",
        "points (measured ms -> fitted ms, relative error):",
    ]
    for m, rel in zip(measurements, fit.rel_errors, strict=True):
        lines.append(
            f"  {m.shape.label()}: {m.seconds * 1e3:.2f} -> {m.seconds * (1 + rel) * 1e3:.2f} "
            f"({rel:+.1%})"
        )
    return "\n".join(lines)


def service_model(profile: CostProfile | str | Path, chunk_tokens: int) -> ServiceTimeModel:
    """The service-time model an ``Engine``'s policies should predict with, from a fitted
    profile (object, built-in name or JSON path): ``Engine(..., service=service_model(path,
    config.max_num_batched_tokens))``, as the simulator builds its own."""
    if not isinstance(profile, CostProfile):
        profile = get_profile(str(profile))
    return ServiceTimeModel.from_profile(profile, chunk_tokens)
