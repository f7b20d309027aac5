"""The targets of issue 3, evaluated on load-sweep (+ ablations) results, per profile.

Each target reports its measured value, threshold, pass/fail, or "not measured" with the
reason (a policy not registered yet, a knee outside the grid). Thresholds are the issue's;
``aim`` is its stretch value where it gives one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from astraea.experiments.analysis import (
    PAST_KNEE_FACTOR,
    Crossing,
    gain,
    gain_retained,
    ratio,
    reference_rate,
    sustainable_rate,
)
from astraea.experiments.spec import RunResult
from astraea.experiments.sweep import Curve, groups

ASTRAEA, BASELINE, ORACLE = "astraea", "vllm-fcfs", "srpt-oracle"
ABLATION_ORACLE, ABLATION_HISTORY = "astraea (oracle)", "history-predictor"
PASS, FAIL, MISSING = "pass", "fail", "not measured"
_REF = "at vllm-fcfs's 1.5x rate"
NEVER_WORSE = (("never_worse_avg_vs_vllm", "avg_jct"), ("never_worse_p99_vs_vllm", "p99_jct"))
AT_REFERENCE = (("ref_avg_jct_vs_vllm", "avg_jct"), ("ref_engine_vs_vllm", "avg_engine_time"))
# name, what is measured, pass when measured <op> threshold, threshold, aim (issue 3)
TARGETS: tuple[tuple[str, str, str, float, float | None], ...] = (
    ("sustainable_vs_vllm", "sustainable rate, astraea / vllm-fcfs", ">=", 1.3, 1.5),
    ("sustainable_vs_oracle", "sustainable rate, astraea / srpt-oracle", ">=", 0.95, None),
    ("ref_avg_jct_vs_vllm", f"avg JCT astraea / vllm-fcfs {_REF}", "<=", 0.745, 0.6),
    ("ref_engine_vs_vllm", f"engine time per job astraea / vllm-fcfs {_REF}", "<=", 0.5, None),
    (
        "past_knee_vs_oracle",
        "avg JCT astraea / srpt-oracle at 1.1x astraea's sustainable rate",
        "<=",
        1.3,
        None,
    ),
    ("never_worse_avg_vs_vllm", "max over rates, avg JCT astraea / vllm-fcfs", "<=", 1.0, None),
    ("never_worse_p99_vs_vllm", "max over rates, p99 JCT astraea / vllm-fcfs", "<=", 1.0, None),
    (
        "never_worse_avg_vs_best_peer",
        "max over rates, avg JCT astraea / best other peer",
        "<=",
        1.0,
        None,
    ),
    (
        "beats_best_peer_somewhere",
        "min over rates, avg JCT astraea / best other peer",
        "<=",
        0.9,
        None,
    ),
    (
        "online_predictor_gain_kept",
        f"gain over vllm-fcfs {_REF}, history / oracle predictor",
        ">=",
        0.8,
        None,
    ),
)


@dataclass(slots=True)
class Target:
    name: str
    description: str
    op: str  # ">=" or "<=": how measured compares with threshold to pass
    threshold: float
    measured: float | None = None
    aim: float | None = None
    status: str = MISSING
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(t: Target, measured: float | None, detail: str = "") -> Target:
    """Record ``measured`` on ``t`` and pass or fail it (None: not measured)."""
    t.measured, t.detail = measured, detail
    if measured is None:
        t.status = MISSING
    else:
        ok = measured >= t.threshold if t.op == ">=" else measured <= t.threshold
        t.status = PASS if ok else FAIL
    return t


def _sust(curve: Curve) -> Crossing:
    return sustainable_rate(curve.rates, curve.metric("avg_jct"))


def _censor_note(name: str, c: Crossing) -> str:
    return "" if c.crossed else f"{name} never crossed 1.25x in the grid (a lower bound); "


def _per_rate(
    a: Curve, b: Curve, key: str, pick: Callable[..., tuple[float, float]] = max
) -> tuple[float | None, float | None]:
    """``pick`` (max or min) over the shared grid rates of a[key] / b[key]: (value, rate)."""
    pairs = [
        (a.summaries[a.rates.index(r)][key] / b.summaries[b.rates.index(r)][key], r)
        for r in a.rates
        if r in b.rates
    ]
    return pick(pairs) if pairs else (None, None)


def _best_peer_curve(load: dict[str, Curve]) -> tuple[Curve | None, list[str]]:
    """A pseudo-curve: at each rate, the lowest avg JCT of any other peer (not the oracle)."""
    peers = [c for label, c in load.items() if label not in (ASTRAEA, ORACLE)]
    if not peers:
        return None, []
    rates = sorted(set.intersection(*(set(c.rates) for c in peers)))
    best = Curve("best-peer", rates)
    for r in rates:
        best.summaries.append(
            {"avg_jct": min(c.summaries[c.rates.index(r)]["avg_jct"] for c in peers)}
        )
    return best, [c.label for c in peers]


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _missing(t: dict[str, Target], keys: Iterable[str], why: str) -> None:
    for key in keys:
        t[key].detail = why


def evaluate_profile(
    load: dict[str, Curve], ablation: dict[str, Curve] | None = None
) -> list[Target]:
    """Every target for one profile's load-sweep curves (and its ablation curves)."""
    t = {name: Target(name, desc, op, thr, aim=aim) for name, desc, op, thr, aim in TARGETS}
    astraea = load.get(ASTRAEA)
    if astraea is None:
        _missing(t, t, "astraea is not in the results")
        return list(t.values())
    if BASELINE in load:
        _vs_baseline(t, astraea, load, ablation)
    else:
        keys = [k for k in t if "vllm" in k or k == "online_predictor_gain_kept"]
        _missing(t, keys, "vllm-fcfs is not in the results")
    if ORACLE in load:
        _vs_oracle(t, astraea, load[ORACLE])
    else:
        _missing(t, ("sustainable_vs_oracle", "past_knee_vs_oracle"), "srpt-oracle not measured")
    best, peers = _best_peer_curve(load)
    if best is not None:
        names = "peers: " + ", ".join(peers)
        worst, at = _per_rate(astraea, best, "avg_jct", max)
        judge(t["never_worse_avg_vs_best_peer"], worst, f"worst at {at} jobs/s; {names}")
        least, at = _per_rate(astraea, best, "avg_jct", min)
        judge(t["beats_best_peer_somewhere"], least, f"best at {at} jobs/s; {names}")
    return list(t.values())


def _vs_baseline(
    t: dict[str, Target], a: Curve, load: dict[str, Curve], ablation: dict[str, Curve] | None
) -> None:
    v = load[BASELINE]
    sa, sv = _sust(a), _sust(v)
    note = _censor_note("astraea", sa) + _censor_note("vllm-fcfs", sv)
    detail = (
        f"{sa.rate:.3g} vs {sv.rate:.3g} jobs/s (grid values {sa.grid_rate:g} vs "
        f"{sv.grid_rate:g}: ratio {_num(ratio(sa.grid_rate, sv.grid_rate))}); {note}"
    )
    judge(t["sustainable_vs_vllm"], ratio(sa.rate, sv.rate), detail.rstrip("; "))
    for key, metric in NEVER_WORSE:
        worst, at = _per_rate(a, v, metric)
        judge(t[key], worst, f"worst at {at} jobs/s")
    ref = reference_rate(v.rates, v.metric("avg_jct"))
    if ref is None:
        keys = ("ref_avg_jct_vs_vllm", "ref_engine_vs_vllm", "online_predictor_gain_kept")
        _missing(t, keys, "vllm-fcfs never reaches 1.5x its light-load JCT in the grid")
        return
    for key, metric in AT_REFERENCE:
        x, y = a.at(metric, ref), v.at(metric, ref)
        judge(t[key], ratio(x, y), f"at {ref:.3g} jobs/s: {_num(x)} s vs {_num(y)} s")
    _online(t["online_predictor_gain_kept"], {**load, **(ablation or {})}, ref)


def _vs_oracle(t: dict[str, Target], a: Curve, oracle: Curve) -> None:
    sa, so = _sust(a), _sust(oracle)
    note = _censor_note("astraea", sa) + _censor_note("srpt-oracle", so)
    detail = f"{sa.rate:.3g} vs {so.rate:.3g} jobs/s; {note}"
    judge(t["sustainable_vs_oracle"], ratio(sa.rate, so.rate), detail.rstrip("; "))
    knee = PAST_KNEE_FACTOR * sa.rate
    x, y = a.at("avg_jct", knee), oracle.at("avg_jct", knee)
    if not sa.crossed:
        t["past_knee_vs_oracle"].detail = "astraea never crossed 1.25x in the grid"
    elif x is None or y is None:
        t["past_knee_vs_oracle"].detail = f"{knee:.3g} jobs/s is outside the grid"
    else:
        detail = f"at {knee:.3g} jobs/s: {_num(x)} s vs {_num(y)} s"
        judge(t["past_knee_vs_oracle"], ratio(x, y), detail)


def _online(target: Target, curves: dict[str, Curve], ref: float) -> None:
    oracle = curves.get(ABLATION_ORACLE) or curves.get(ASTRAEA)
    history, base = curves.get(ABLATION_HISTORY), curves[BASELINE]
    if oracle is None or history is None:
        target.detail = "no history-predictor run (run the ablations experiment)"
        return
    b = base.at("avg_jct", ref)
    g_o, g_h = gain(oracle.at("avg_jct", ref), b), gain(history.at("avg_jct", ref), b)
    detail = f"at {ref:.3g} jobs/s: oracle gain {_num(g_o)}, history gain {_num(g_h)}"
    if g_o is not None and g_o <= 0:
        detail += " (no oracle gain to keep)"
    judge(target, gain_retained(g_h, g_o), detail)


def evaluate(
    load_runs: Iterable[RunResult], ablation_runs: Iterable[RunResult] = ()
) -> dict[str, list[Target]]:
    """Profile -> its targets, for every InferCept-mix profile in the load sweep."""
    ablations = {p: g for (p, w), g in groups(ablation_runs).items() if w == "infercept"}
    return {
        profile: evaluate_profile(group, ablations.get(profile))
        for (profile, workload), group in groups(load_runs).items()
        if workload == "infercept"
    }
