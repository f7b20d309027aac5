"""Matplotlib figures: JCT distributions, policy bars, KV utilisation over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from astraea.sim.run import SimulationReport


def _cdf(ax: Axes, values: Sequence[float], label: str) -> None:
    xs = sorted(values)
    ys = [(i + 1) / len(xs) for i in range(len(xs))]
    ax.step(xs, ys, where="post", label=label)


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_simulation(report: SimulationReport, path: Path) -> None:
    """JCT CDF and KV-cache utilisation over time for one run."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _cdf(left, [m.jct for m in report.jobs], report.summary["policy"])
    left.set(xlabel="job completion time (s)", ylabel="fraction of jobs", title="JCT CDF")
    left.grid(alpha=0.3)
    timeline = report.result.kv_timeline
    right.plot([t for t, _, _ in timeline], [o for _, o, _ in timeline], label="owned")
    right.plot([t for t, _, _ in timeline], [o + c for _, o, c in timeline], label="owned + cached")
    right.set(
        xlabel="time (s)", ylabel="fraction of KV blocks", title="KV cache use", ylim=(0, 1.05)
    )
    right.legend()
    right.grid(alpha=0.3)
    _save(fig, path)


def plot_comparison(reports: Sequence[SimulationReport], path: Path) -> None:
    """JCT CDF per policy, and average / p99 JCT bars, all on the same jobs."""
    plot_jct_comparison(
        [r.summary["policy"] for r in reports], [[m.jct for m in r.jobs] for r in reports], path
    )


def plot_jct_comparison(names: Sequence[str], jcts: Sequence[Sequence[float]], path: Path) -> None:
    """JCT CDF per run, and average / p99 JCT bars (simulated or measured runs alike)."""
    from astraea.metrics.jct import percentile

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for values, name in zip(jcts, names, strict=True):
        if values:
            _cdf(left, values, name)
    left.set(xlabel="job completion time (s)", ylabel="fraction of jobs", title="JCT CDF")
    left.legend()
    left.grid(alpha=0.3)
    x = range(len(names))
    width = 0.38
    avg = [sum(v) / len(v) if v else 0.0 for v in jcts]
    p99 = [percentile(v, 99) if v else 0.0 for v in jcts]
    right.bar([i - width / 2 for i in x], avg, width, label="avg")
    right.bar([i + width / 2 for i in x], p99, width, label="p99")
    right.set_xticks(list(x), list(names), rotation=20)
    right.set(ylabel="JCT (s)", title="JCT by run")
    right.legend()
    right.grid(alpha=0.3, axis="y")
    _save(fig, path)
