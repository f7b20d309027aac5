"""Execute run specs, in parallel processes where asked, with a progress bar over runs.

Each run returns only its summary dict, so little crosses process boundaries. Results come
back in spec order whatever order the workers finish in, so an experiment is deterministic.
Specs whose policy is not registered, or rejects the given parameters, are skipped with a
note instead of failing the experiment: policies land over time.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from astraea.experiments.spec import RunResult, RunSpec

# summary keys that are large or meaningless once aggregated over runs
_DROP = ("kv_actions",)


def execute(spec: RunSpec) -> dict[str, Any]:
    """Simulate one spec and return its summary (top-level so worker processes can run it)."""
    from astraea.sim.profiles import get_profile
    from astraea.sim.run import simulate
    from astraea.workloads import generate_workload

    jobs = generate_workload(spec.workload, spec.num_jobs, spec.rate, spec.seed)
    start = time.perf_counter()
    report = simulate(
        jobs,
        spec.policy,
        get_profile(spec.profile),
        config_overrides=dict(spec.config_overrides),
        policy_params=dict(spec.policy_params),
        slowdown=False,
    )
    # NaN (e.g. slowdown, not computed here) becomes None: results.json must be valid JSON
    summary = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in report.summary.items()
        if k not in _DROP
    }
    summary["run_wall_seconds"] = time.perf_counter() - start
    return summary


def check_runnable(specs: Sequence[RunSpec]) -> tuple[list[RunSpec], list[dict[str, Any]]]:
    """Split specs into runnable ones and skip notes (unknown policy, rejected parameters)."""
    from astraea.policies import make_policy, policy_names

    known = set(policy_names())
    verdicts: dict[tuple[str, str], str | None] = {}
    keep: list[RunSpec] = []
    skipped: list[dict[str, Any]] = []
    for spec in specs:
        key = (spec.policy, repr(sorted(spec.policy_params.items())))
        if key not in verdicts:
            if spec.policy not in known:
                verdicts[key] = f"policy {spec.policy!r} is not registered"
            else:
                try:
                    make_policy(spec.policy, **spec.policy_params)
                    verdicts[key] = None
                except (TypeError, ValueError) as err:
                    verdicts[key] = f"{spec.policy} rejects {spec.policy_params}: {err}"
        reason = verdicts[key]
        if reason is None:
            keep.append(spec)
        else:
            skipped.append({**spec.to_dict(), "reason": reason})
    return keep, skipped


def summarize_skips(skipped: Sequence[dict[str, Any]]) -> list[str]:
    """One line per distinct skip reason, with how many runs it covers."""
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s["reason"]] = counts.get(s["reason"], 0) + 1
    return [f"skipped {n} run(s): {reason}" for reason, n in counts.items()]


def run_specs(
    specs: Sequence[RunSpec],
    workers: int = 2,
    console: Console | None = None,
    run: Callable[[RunSpec], dict[str, Any]] = execute,
) -> list[RunResult]:
    """Run every spec; ``workers`` > 1 uses that many processes. Results in spec order."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    console = console or Console()
    summaries: list[dict[str, Any] | None] = [None] * len(specs)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("runs", total=len(specs))
        if workers == 1 or len(specs) <= 1:
            for i, spec in enumerate(specs):
                bar.update(task, description=_describe(spec))
                summaries[i] = run(spec)
                bar.advance(task)
        else:
            # spawn, not fork: the progress bar's refresh thread must not be forked
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(run, spec): i for i, spec in enumerate(specs)}
                for future in as_completed(futures):
                    i = futures[future]
                    summaries[i] = future.result()
                    bar.update(task, description=_describe(specs[i]))
                    bar.advance(task)
    return [RunResult(spec, s) for spec, s in zip(specs, summaries, strict=True) if s is not None]


def _describe(spec: RunSpec) -> str:
    return f"{spec.profile} {spec.workload} r={spec.rate:g} {spec.series}"
