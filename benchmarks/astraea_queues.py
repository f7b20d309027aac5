"""astraea's queue design choices, each against the best peer, on the tuning mixes only.

The Astraea paper leaves open what a call's token cost counts, the quotas and what HRRN's
service time is (shared/ASTRAEA.md sec. 2.2). This runs astraea with each choice, and every
peer, on the tuning mixes (``astraea.workloads.registry.TUNING_MIXES``) from the knee to
past it, with copies on copy engines beside compute, and reports per variant avg JCT / the
best peer's at every point, the worst and the geometric mean, for two seeds (the runs past
the knee are sensitive to small changes, so one seed says little). Held-out mixes are not
run here: benchmarks/limit_gap.py reports them.

    python benchmarks/astraea_queues.py [--seeds 0,1] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

from _common import write_result
from limit_gap import OVERLAP, PEERS

from astraea.experiments.runner import run_specs
from astraea.experiments.spec import RunSpec

# (mix, profile, jobs, rates): the knee and past it, read off vllm-fcfs and LAMPS.
ROWS = [
    ("infercept", "llama2-7b-a100", 400, (2.5, 3.0, 4.0, 5.0)),
    ("autellix", "llama2-7b-a100", 300, (0.2, 0.25, 0.3, 0.4)),
    ("toolbench", "llama2-7b-a100", 400, (1.0, 1.25, 2.0, 3.0)),
    ("chat", "llama2-7b-a100", 400, (1.0, 3.0, 5.0)),
    ("continuum", "llama31-8b-h100", 60, (0.05, 0.07, 0.1, 0.15)),
    # The tuning mixes on the two larger Llama-2 profiles, at limit_gap's scaled rates.
    ("infercept", "llama2-13b-2xa100", 400, (3.0, 4.0, 5.0)),
    ("infercept", "llama2-70b-4xa100", 400, (2.5, 3.0, 4.0)),
    ("autellix", "llama2-13b-2xa100", 300, (0.276, 0.332, 0.442)),
    ("autellix", "llama2-70b-4xa100", 300, (0.183, 0.219, 0.292)),
    ("toolbench", "llama2-13b-2xa100", 400, (1.11, 1.38, 2.21)),
    ("toolbench", "llama2-70b-4xa100", 400, (0.731, 0.914, 1.46)),
    ("chat", "llama2-13b-2xa100", 400, (1.11, 3.32, 5.53)),
    ("chat", "llama2-70b-4xa100", 400, (0.731, 2.19, 3.65)),
]
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "queued W (the paper's; default before 2026-12-02)": {"hrrn_wait": "queued"},
    "Q0 quota 512 (the old default)": {"base_quantum": 512},
    "paper (token cost, plain T)": {"call_cost": "tokens", "hrrn_size": "time"},
    "token cost": {"call_cost": "tokens"},
    "plain T": {"hrrn_size": "time"},
    "adaptive quotas": {"quotas": "adaptive"},
    "one queue": {"use_mlfq": False},
}


def specs(seed: int) -> list[RunSpec]:
    out = []
    for mix, profile, jobs, rates in ROWS:
        for rate in rates:
            for peer in PEERS:
                out.append(RunSpec(profile, mix, jobs, rate, seed, peer, {}, OVERLAP, label=peer))
            for name, params in VARIANTS.items():
                label = f"astraea:{name}"
                out.append(RunSpec(profile, mix, jobs, rate, seed, "astraea", params, OVERLAP,
                                   label=label))  # fmt: skip
    return out


def avg_jct_by_point(
    make_specs: Callable[[int], list[RunSpec]], seeds: list[int], workers: int
) -> dict[str, dict[str, float]]:
    """ "mix/profile@rate/seedN" -> run label -> avg JCT, for the specs of every seed."""
    points: dict[str, dict[str, float]] = {}
    for seed in seeds:
        for run in run_specs(make_specs(seed), workers=workers):
            s = run.spec
            key = f"{s.workload}/{s.profile}@{s.rate}/seed{seed}"
            points.setdefault(key, {})[s.label] = run.summary["avg_jct"]
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    points = avg_jct_by_point(specs, seeds, args.workers)
    variants = {}
    for name in VARIANTS:
        ratios = {
            key: jct[f"astraea:{name}"] / min(jct[p] for p in PEERS) for key, jct in points.items()
        }
        values = list(ratios.values())
        variants[name] = {
            "params": VARIANTS[name],
            "worst_vs_best_peer": max(values),
            "geomean_vs_best_peer": math.exp(sum(map(math.log, values)) / len(values)),
            "points_over_1.02": sum(v > 1.02 for v in values),
            "vs_best_peer": ratios,
        }
        print(f"{name:28s} worst {max(values):.3f}  geomean "
              f"{variants[name]['geomean_vs_best_peer']:.3f}", flush=True)  # fmt: skip
    write_result(
        "astraea_queues",
        {
            "copies": "overlap (copy engines beside compute)",
            "mixes": "tuning set only",
            "seeds": seeds,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "variants": variants,
            "avg_jct": points,
        },
    )


if __name__ == "__main__":
    main()
