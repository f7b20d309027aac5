"""JCT targets of issue 3, over a rate sweep, for each Llama-2 profile on the InferCept mix.

Runs the ``load-sweep`` and ``ablations`` experiments (or, with ``--from DIR``, reads their
saved ``DIR/load-sweep/results.json`` and ``DIR/ablations/results.json``) and evaluates every
target: sustainable-rate ratios against vllm-fcfs (>= 1.3, aim 1.5) and srpt-oracle (>= 0.95);
at vllm-fcfs's 1.5x rate, astraea's avg JCT (<= 0.745x, aim 0.6x) and engine time (<= 0.5x);
past astraea's knee, avg JCT within 1.3x of srpt-oracle; never worse than vllm-fcfs (avg and
p99) nor the best other peer (avg) at any rate, and at least 0.9x better somewhere; the
history predictor keeps >= 80% of the oracle predictor's gain. Policies not registered yet
make their targets "not measured". Writes benchmarks/results/jct_targets.json.

    python benchmarks/jct_targets.py [--from docs/results] [--quick] [--workers 2] [--jobs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import write_result

from astraea.experiments import Options, load_results, run_experiment
from astraea.experiments.spec import ExperimentResults
from astraea.experiments.targets import FAIL, MISSING, PASS, Target, evaluate

EXPERIMENTS = ("load-sweep", "ablations")


def _source(results: ExperimentResults | None, path: Path) -> dict[str, object]:
    if results is None:
        return {"path": str(path), "found": False}
    return {
        "path": str(path),
        "found": True,
        "experiment": results.experiment,
        "version": results.version,
        "command": results.meta.get("command"),
        "date": results.meta.get("date"),
        "git_commit": results.meta.get("git_commit"),
        "runs": len(results.runs),
        "skip_notes": results.meta.get("skip_notes", []),
    }


def _obtain(args: argparse.Namespace) -> dict[str, tuple[ExperimentResults | None, Path]]:
    out: dict[str, tuple[ExperimentResults | None, Path]] = {}
    for name in EXPERIMENTS:
        if args.from_dir is not None:
            path = args.from_dir / name / "results.json"
            out[name] = (load_results(path) if path.exists() else None, path)
        else:
            base = args.out / (f"{name}-quick" if args.quick else name)
            options = Options(quick=args.quick, num_jobs=args.jobs, seed=args.seed)
            command = "python " + " ".join(sys.argv) + f"  (experiment {name})"
            out[name] = (run_experiment(name, options, base, args.workers, command), base)
    return out


def _print(profile: str, targets: list[Target]) -> None:
    print(f"\n{profile}")
    for t in targets:
        value = "-" if t.measured is None else f"{t.measured:.4f}"
        aim = "" if t.aim is None else f" (aim {t.aim:g})"
        mark = {PASS: "PASS", FAIL: "FAIL", MISSING: "n/m "}[t.status]
        print(f"  {mark} {t.name:30} {value:>7} {t.op} {t.threshold:g}{aim}")
        if t.detail:
            print(f"       {t.detail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--from", dest="from_dir", type=Path, help="read DIR/<experiment>/, do not run")
    add("--out", type=Path, default=Path("docs/results"), help="where runs write results")
    parser.add_argument("--quick", action="store_true", help="the quick experiment variants")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None, help="override jobs per run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    obtained = _obtain(args)
    load, load_path = obtained["load-sweep"]
    if load is None:
        parser.error(f"no load-sweep results at {load_path}")
    ablations, _ = obtained["ablations"]
    per_profile = evaluate(load.runs, ablations.runs if ablations else ())
    counts = {PASS: 0, FAIL: 0, MISSING: 0}
    for profile, targets in per_profile.items():
        _print(profile, targets)
        for t in targets:
            counts[t.status] += 1
    path = write_result(
        "jct_targets",
        {
            "workload": "infercept",
            "sources": {name: _source(r, p) for name, (r, p) in obtained.items()},
            "counts": counts,
            "all_measured_pass": counts[FAIL] == 0 and counts[PASS] > 0,
            "profiles": {p: [t.to_dict() for t in ts] for p, ts in per_profile.items()},
        },
    )
    print(
        f"\n{counts[PASS]} pass, {counts[FAIL]} fail, {counts[MISSING]} not measured; wrote {path}"
    )


if __name__ == "__main__":
    main()
