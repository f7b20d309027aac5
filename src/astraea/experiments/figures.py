"""Matplotlib figures of the experiments: JCT against arrival rate, and parameter sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from astraea.experiments.sweep import Curve

# astraea, the oracle and vllm-fcfs stand out; the others share a palette of their own
_STYLE: dict[str, dict[str, Any]] = {
    "astraea": {"color": "crimson", "linewidth": 2.4, "zorder": 5},
    "srpt-oracle": {"color": "black", "linestyle": "--", "linewidth": 1.6},
    "vllm-fcfs": {"color": "tab:blue", "linewidth": 2.0},
}
_PALETTE = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
            "tab:cyan", "tab:gray", "goldenrod", "navy", "lime", "teal")  # fmt: skip
_MARKERS = ("s", "^", "v", "D", "P", "X", "<", ">")


def _styles(labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A distinct colour and marker per series, the same for a label across panels."""
    out, i = {}, 0
    for label in labels:
        if label in _STYLE:
            out[label] = {"marker": "o", "markersize": 3, **_STYLE[label]}
        else:
            color, marker = _PALETTE[i % len(_PALETTE)], _MARKERS[i % len(_MARKERS)]
            out[label] = {"color": color, "marker": marker, "markersize": 3, "linewidth": 1.2}
            i += 1
    return out


def _log_helps(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > 8


def _save(fig: plt.Figure, path: Path, layout: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_jct_vs_rate(
    group: dict[str, Curve],
    path: Path,
    title: str,
    metrics: Sequence[tuple[str, str]] = (("avg_jct", "average JCT"), ("p99_jct", "p99 JCT")),
    marks: dict[str, float] | None = None,
) -> Path:
    """One panel per metric, one line per series; log y when the range is wide.

    ``marks`` draws labelled vertical lines (e.g. the reference rate).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics) + 1.6, 4.4), squeeze=False)
    styles = _styles(list(group))
    for ax, (key, name) in zip(axes[0], metrics, strict=True):
        values: list[float] = []
        for label, curve in group.items():
            ys = curve.metric(key)
            values += ys
            ax.plot(curve.rates, ys, label=label, **styles[label])
        if _log_helps(values):
            ax.set_yscale("log")
        for text, x in (marks or {}).items():
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
            ax.annotate(text, (x, 1), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=7, color="grey")  # fmt: skip
        ax.set(xlabel="arrival rate (jobs/s)", ylabel=f"{name} (s)", title=f"{title}: {name}")
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    return _save(fig, path, layout=False)


def plot_param_sweeps(
    panels: dict[str, dict[str, tuple[list[float], list[float]]]],
    path: Path,
    ylabel: str = "average JCT (s)",
    references: dict[str, float] | None = None,
) -> Path:
    """One panel per parameter: value against the parameter, one line per rate.

    ``references`` (name -> y) draws dotted horizontal lines, e.g. the default setting's
    value at each rate, in every panel.
    """
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, (param, lines) in zip(axes[0], panels.items(), strict=False):
        for name, (xs, ys) in lines.items():
            ax.plot(xs, ys, marker="o", label=name)
        for i, (name, y) in enumerate((references or {}).items()):
            color = ax.lines[i].get_color() if i < len(ax.lines) else "grey"
            ax.axhline(y, color=color, linestyle=":", linewidth=1, label=name)
        ax.set(xlabel=param, ylabel=ylabel, title=param)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)
