"""Experiment ``kv-sweep``: sensitivity of astraea to the parameters the paper leaves open.

One parameter at a time (the others at their defaults): the KV high-watermark, the token
quota of Q0, the number of queues and the aging threshold, at two loads on 7B/A100: near
astraea's expected knee and past it, where the choices matter most.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astraea.experiments import grids
from astraea.experiments.figures import plot_param_sweeps
from astraea.experiments.load_sweep import header
from astraea.experiments.registry import Experiment, register
from astraea.experiments.spec import ExperimentResults, Options, RunSpec
from astraea.experiments.sweep import markdown_table

POLICY = "astraea"
DEFAULT = "default"
PARAMS: dict[str, tuple[float, ...]] = {
    "watermark": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    "base_quantum": (128, 256, 512, 1024, 2048),
    "num_queues": (2, 3, 4, 5, 6),
    "aging_ratio": (2, 4, 8, 16, 32),
}
PARAMS_QUICK: dict[str, tuple[float, ...]] = {
    "watermark": (0.5, 0.9),
    "base_quantum": (128, 2048),
    "num_queues": (2, 6),
    "aging_ratio": (2, 32),
}


def build_kv_sweep(options: Options) -> list[RunSpec]:
    n = grids.jobs(options, grids.KV_JOBS, grids.KV_JOBS_QUICK)
    params = PARAMS_QUICK if options.quick else PARAMS
    specs = []
    for rate in grids.rates(options, grids.KV_RATES, grids.KV_RATES_QUICK):

        def spec(label: str, p: dict[str, Any], rate: float = rate) -> RunSpec:
            return RunSpec(
                grids.KV_PROFILE, "infercept", n, rate, options.seed, POLICY, p, {}, label
            )

        specs.append(spec(DEFAULT, {}))
        for name, values in params.items():
            specs += [spec(f"{name}={v:g}", {name: v}) for v in values]
    return specs


def report_kv_sweep(results: ExperimentResults, out: Path) -> dict[str, Any]:
    """Per parameter: avg/p99 JCT and engine time at each value and rate, one figure."""
    by_rate: dict[float, dict[str, dict[str, Any]]] = {}
    for run in results.runs:
        by_rate.setdefault(run.spec.rate, {})[run.spec.series] = run.summary
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    rows = []
    for rate, labels in sorted(by_rate.items()):
        for name in PARAMS:
            points = sorted(
                (float(label.split("=", 1)[1]), s)
                for label, s in labels.items()
                if label.startswith(name + "=")
            )
            if points:
                xs, ys = [x for x, _ in points], [s["avg_jct"] for _, s in points]
                panels.setdefault(name, {})[f"{rate:g} jobs/s"] = (xs, ys)
            rows += [[name, x, rate, s["avg_jct"], s["p99_jct"], s["avg_engine_time"]]
                     for x, s in points]  # fmt: skip
        if DEFAULT in labels:
            s = labels[DEFAULT]
            rows.append([DEFAULT, None, rate, s["avg_jct"], s["p99_jct"], s["avg_engine_time"]])
    references = {
        f"default, {rate:g} jobs/s": labels[DEFAULT]["avg_jct"]
        for rate, labels in sorted(by_rate.items())
        if DEFAULT in labels
    }
    parts = [header(results)]
    if panels:
        figure = plot_param_sweeps(panels, out / "kv_sweep.png", references=references)
        parts.append(f"![kv-sweep]({figure.name})\n\n")
    rows.sort(key=lambda r: (r[0], r[2], -1 if r[1] is None else r[1]))
    parts.append(
        markdown_table(
            ["parameter", "value", "rate jobs/s", "avg JCT s", "p99 JCT s", "engine s"], rows
        )
    )
    (out / "table.md").write_text("".join(parts))
    return {"panels": panels, "default_avg_jct": references}


KV_SWEEP = register(
    Experiment(
        name="kv-sweep",
        version="1",
        description=(
            "astraea's open parameters one at a time (KV watermark, Q0 token quota, queue "
            "count, aging ratio) on Llama-2-7B/A100 near and past its knee."
        ),
        build=build_kv_sweep,
        report=report_kv_sweep,
    )
)
