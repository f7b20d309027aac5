"""The targets of "astraea wins on every agent mix, and gets close to the memory limit",
judged on what ``benchmarks/limit_gap.py`` and ``benchmarks/scheduler_hot_path.py`` wrote.

Why a module of its own: the benchmarks record measured values; this turns them into one
verdict per target (pass / fail / not applicable) with the point that decides it, so a
reader of ``benchmarks/results/limit_targets.json`` need not recompute ratios by hand.
Inputs are the ``results`` mappings of ``limit_gap.json`` (the InferCept mix on the Llama-2
profiles) and ``limit_gap_mixes.json`` with ``limit_gap_profiles.json`` (the other mixes, on
all four profiles), keyed ``"mix/profile"``, and the ``points`` list of
``scheduler_hot_path.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from astraea.experiments.targets import MISSING, Target, judge

# The non-oracle peers of limit_gap.py: "best peer" is the lowest avg JCT among them.
PEERS = ("vllm-fcfs", "sglang-hrrn", "infercept", "lamps", "continuum", "autellix-plas")
NOT_APPLICABLE = "not applicable"
MEMORY_BOUND = ("infercept/llama2-7b-a100", "infercept/llama2-13b-2xa100")
COMPUTE_BOUND = "infercept/llama2-70b-4xa100"
TOP_RATE_GOAL = 0.85  # astraea / best peer at a mix's top rate ...
TOP_RATE_SHARE = 0.5  # ... on at least this share of the mixes
REFERENCE_GOAL = 0.745  # astraea / vllm-fcfs at vllm-fcfs's 1.5x-light-load rate

Results = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Point:
    """astraea against the best peer at one rate of one mix."""

    key: str  # "mix/profile"
    rate: float
    ratio: float  # astraea avg JCT / the best peer's
    peer: str

    def label(self) -> str:
        return f"{self.key}@{self.rate:g}: {self.ratio:.3f}x {self.peer}"


def points(results: Results) -> list[Point]:
    """Every (mix, rate) of ``results``, astraea against its best peer there."""
    out = []
    for key, r in results.items():
        jct = r["avg_jct"]
        for i, rate in enumerate(r["rates"]):
            peer = min(PEERS, key=lambda p: jct[p][i])
            out.append(Point(key, rate, jct["astraea"][i] / jct[peer][i], peer))
    return out


def evaluate(
    infercept: Results, mixes: Results, hot_path: Sequence[Mapping[str, Any]]
) -> list[Target]:
    """Every target, in the issue's order."""
    every = {**infercept, **mixes}
    return [
        *_limit(infercept),
        _worst_vs_best_peer(every),
        *_never_worse(every),
        _top_rates(every),
        _reference(every),
        *_hot_path(hot_path),
    ]


def _limit(infercept: Results) -> list[Target]:
    memory = Target("sustainable_vs_limit_memory_bound",
                    "sustainable rate astraea / two-tier limit, InferCept mix, 7B and 13B (min)",
                    ">=", 0.9)  # fmt: skip
    compute = Target("sustainable_vs_limit_compute_bound",
                     "sustainable rate astraea / two-tier limit, InferCept mix, 70B "
                     "(= the limit, read as within 1%)", ">=", 0.99)  # fmt: skip
    at_three = Target("avg_jct_vs_limit_7b_at_3",
                      "avg JCT astraea / two-tier limit at 3 jobs/s, InferCept mix, 7B",
                      "<=", 1.15)  # fmt: skip
    found = [
        infercept[k]["sustainable_vs_limit"]["astraea"] for k in MEMORY_BOUND if k in infercept
    ]
    if len(found) == len(MEMORY_BOUND):
        judge(memory, min(found), "7B, 13B: " + ", ".join(f"{v:.3f}" for v in found))
    if COMPUTE_BOUND in infercept:
        judge(compute, infercept[COMPUTE_BOUND]["sustainable_vs_limit"]["astraea"])
    seven = infercept.get(MEMORY_BOUND[0])
    if seven is not None and 3.0 in seven["rates"]:
        judge(at_three, seven["astraea_vs_limit"][seven["rates"].index(3.0)])
    return [memory, compute, at_three]


def _worst_vs_best_peer(every: Results) -> Target:
    t = Target("worst_vs_best_peer", "max over every rate of every mix, avg JCT astraea / "
               "best non-oracle peer", "<=", 1.02)  # fmt: skip
    pts = points(every)
    if not pts:
        return t
    over = sorted((p for p in pts if p.ratio > t.threshold), key=lambda p: -p.ratio)
    worst = max(pts, key=lambda p: p.ratio)
    profiles = sorted({k.split("/", 1)[1] for k in every})
    detail = f"{len(pts)} points on {', '.join(profiles)}; above 1.02: "
    detail += "; ".join(p.label() for p in over) if over else "none"
    return judge(t, worst.ratio, detail)


def _never_worse(every: Results) -> list[Target]:
    out = []
    for name, series, threshold, what in (
        ("worst_vs_vllm_fcfs", "astraea_vs_vllm_fcfs", 1.01, "avg"),
        ("worst_p99_vs_vllm_fcfs", "astraea_p99_vs_vllm_fcfs", 1.02, "p99"),
    ):
        t = Target(name, f"max over every rate of every mix, {what} JCT astraea / vllm-fcfs",
                   "<=", threshold)  # fmt: skip
        pairs = [(v, f"{k}@{r['rates'][i]:g}") for k, r in every.items()
                 for i, v in enumerate(r[series])]  # fmt: skip
        if pairs:
            value, where = max(pairs)
            judge(t, value, f"worst at {where}")
        out.append(t)
    return out


def _top_rates(every: Results) -> Target:
    t = Target("top_rate_share_le_0.85", "share of mixes where astraea / best peer <= 0.85 "
               "at the mix's top rate", ">=", TOP_RATE_SHARE)  # fmt: skip
    if not every:
        return t
    top = {k: max(points({k: r}), key=lambda p: p.rate) for k, r in every.items()}
    met = [k for k, p in top.items() if p.ratio <= TOP_RATE_GOAL]
    free = [k for k, r in every.items() if r["free_link_vs_best_peer"][-1] <= TOP_RATE_GOAL]
    detail = (
        f"met on {len(met)} of {len(top)} ({', '.join(met) or 'none'}); the best policy with "
        f"free copies (free-link) reaches 0.85x on {len(free)} ({', '.join(free) or 'none'})"
    )
    return judge(t, len(met) / len(top), detail)


def _reference(every: Results) -> Target:
    """Judged only where the limit itself is at or below the goal; elsewhere no policy on
    this hardware could meet it."""
    t = Target("reference_rate_vs_vllm_fcfs", "avg JCT astraea / vllm-fcfs at vllm-fcfs's "
               "1.5x-light-load rate, on mixes where the two-tier limit allows <= 0.745",
               "<=", REFERENCE_GOAL)  # fmt: skip
    refs = {k: r["reference"] for k, r in every.items() if r.get("reference")}
    allowed = {k: v for k, v in refs.items() if v["limit_vs_vllm_fcfs"] <= REFERENCE_GOAL}
    gap = max((v["astraea_vs_vllm_fcfs"] / v["limit_vs_vllm_fcfs"] for v in refs.values()),
              default=None)  # fmt: skip
    near = f"; astraea is at most {gap:.3f}x the limit there on all {len(refs)}" if gap else ""
    if not allowed:
        t.status = NOT_APPLICABLE if refs else MISSING
        t.detail = f"the limit is above {REFERENCE_GOAL} on every mix measured{near}"
        return t
    worst = max(allowed, key=lambda k: allowed[k]["astraea_vs_vllm_fcfs"])
    detail = f"limit allows it on {', '.join(sorted(allowed))}; worst {worst}{near}"
    return judge(t, allowed[worst]["astraea_vs_vllm_fcfs"], detail)


def _hot_path(hot_path: Sequence[Mapping[str, Any]]) -> list[Target]:
    out = []
    for jobs, limit in ((1000, 1.0), (10000, 10.0)):
        t = Target(f"schedule_ms_at_{jobs}", f"astraea schedule() median ms, {jobs:,} active "
                   "jobs", "<=", limit)  # fmt: skip
        for p in hot_path:
            if p["policy"] == "astraea" and p["active_jobs"] == jobs:
                judge(t, p["schedule_ms_median"], f"{p['waiting']} waiting")
        out.append(t)
    return out
