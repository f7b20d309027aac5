"""Runs -> curves (one per series, over rate) -> the sweep numbers and markdown tables.

Shared by every experiment that sweeps the arrival rate (load-sweep, ablations, mixes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from astraea.experiments.analysis import (
    REFERENCE_FACTOR,
    interpolate,
    light_load,
    ratio,
    ratio_table,
    reference_rate,
    sustainable_rate,
)
from astraea.experiments.spec import RunResult

BASELINE = "vllm-fcfs"
AT_REFERENCE = ("avg_jct", "p99_jct", "avg_engine_time")


@dataclass(slots=True)
class Curve:
    """One series (a policy or a variant) over the rates of a sweep, rates ascending."""

    label: str
    rates: list[float] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def metric(self, key: str) -> list[float]:
        return [float(s[key]) for s in self.summaries]

    def at(self, key: str, rate: float) -> float | None:
        """``key`` at ``rate``, linearly interpolated between neighbouring grid points."""
        return interpolate(self.rates, self.metric(key), rate)


def curves(runs: Iterable[RunResult]) -> dict[str, Curve]:
    """Series label -> its curve; labels keep the order they first appear in."""
    out: dict[str, Curve] = {}
    for run in runs:
        out.setdefault(run.spec.series, Curve(run.spec.series)).summaries.append(
            {**run.summary, "_rate": run.spec.rate}
        )
    for curve in out.values():
        curve.summaries.sort(key=lambda s: s["_rate"])
        curve.rates = [s["_rate"] for s in curve.summaries]
    return out


def groups(runs: Iterable[RunResult]) -> dict[tuple[str, str], dict[str, Curve]]:
    """(profile, workload) -> its curves, in order of first appearance."""
    buckets: dict[tuple[str, str], list[RunResult]] = {}
    for run in runs:
        buckets.setdefault((run.spec.profile, run.spec.workload), []).append(run)
    return {key: curves(rs) for key, rs in buckets.items()}


def sweep_analysis(group: dict[str, Curve], baseline: str = BASELINE) -> dict[str, Any]:
    """Light-load value and sustainable rate per series; everyone at the baseline's 1.5x rate."""
    series: dict[str, Any] = {}
    for label, curve in group.items():
        avg = curve.metric("avg_jct")
        series[label] = {
            "rates": curve.rates,
            "light_load_avg_jct": light_load(curve.rates, avg),
            "sustainable": sustainable_rate(curve.rates, avg).to_dict(),
        }
    ref = None
    if baseline in group:
        base = group[baseline]
        ref = reference_rate(base.rates, base.metric("avg_jct"), REFERENCE_FACTOR)
    if ref is not None:
        for label, curve in group.items():
            at = {key: curve.at(key, ref) for key in AT_REFERENCE}
            base_at = {key: group[baseline].at(key, ref) for key in AT_REFERENCE}
            series[label]["at_reference"] = at
            series[label]["at_reference_ratio"] = {k: ratio(at[k], base_at[k]) for k in at}
    bsust = series.get(baseline, {}).get("sustainable", {}).get("rate")
    for entry in series.values():
        entry["sustainable_vs_baseline"] = ratio(entry["sustainable"]["rate"], bsust)
    return {"baseline": baseline, "reference_rate": ref, "series": series}


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` significant digits, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e7:
            return str(int(value))
        if abs(value) >= 10**digits:
            return f"{value:.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def sweep_markdown(title: str, group: dict[str, Curve], analysis: dict[str, Any]) -> str:
    """Markdown for one sweep: knees, values at the reference rate, avg JCT by rate."""
    series = analysis["series"]
    baseline = analysis["baseline"]
    parts = [f"### {title}\n\n"]
    rows = []
    for label, s in series.items():
        sust = s["sustainable"]
        rate = fmt(sust["rate"]) + ("" if sust["crossed"] else "+ (never crossed)")
        rows.append(
            [
                label,
                s["light_load_avg_jct"],
                rate,
                f"{sust['grid_rate']:g}",
                s["sustainable_vs_baseline"],
            ]
        )
    parts.append(
        markdown_table(
            [
                "series",
                "light-load avg JCT s",
                "sustainable rate jobs/s",
                "grid value",
                f"vs {baseline}",
            ],
            rows,
        )
    )
    ref = analysis["reference_rate"]
    if ref is None:
        parts.append(f"\n{baseline} never reaches {REFERENCE_FACTOR}x its light-load JCT here.\n")
    else:
        parts.append(
            f"\nAt {fmt(ref)} jobs/s, where {baseline}'s avg JCT is "
            f"{REFERENCE_FACTOR}x its light-load value (interpolated):\n\n"
        )
        rows = []
        for label, s in series.items():
            at, rel = s.get("at_reference", {}), s.get("at_reference_ratio", {})
            rows.append(
                [
                    label,
                    *(
                        v
                        for k in ("avg_jct", "p99_jct", "avg_engine_time")
                        for v in (at.get(k), rel.get(k))
                    ),
                ]
            )
        parts.append(
            markdown_table(
                ["series", "avg JCT s", "ratio", "p99 JCT s", "ratio", "engine s", "ratio"], rows
            )
        )
    parts.append("\nAverage JCT (s) by arrival rate (jobs/s):\n\n")
    parts.append(by_rate_table(group, "avg_jct"))
    if baseline in group:
        parts.append(f"\nAverage JCT / {baseline}'s, by arrival rate:\n\n")
        parts.append(by_rate_table(group, "avg_jct", baseline))
    return "".join(parts)


def by_rate_table(group: dict[str, Curve], key: str, relative_to: str | None = None) -> str:
    """Rows: rates; columns: series; cells: ``key`` (divided by ``relative_to``'s)."""
    rates = sorted({r for c in group.values() for r in c.rates})
    table = {label: [c.summaries[c.rates.index(r)][key] if r in c.rates else None for r in rates]
             for label, c in group.items()}  # fmt: skip
    if relative_to is not None:
        table = ratio_table(rates, table, relative_to)
    rows = [[f"{r:g}", *(table[label][i] for label in group)] for i, r in enumerate(rates)]
    return markdown_table(["rate", *group], rows)
