"""Two checkouts' speed benchmarks in alternating rounds (A B B A ...), medians and ratios.

A change to the scheduler must not slow its hot path. Absolute times on a shared machine mean
little, so this runs ``scheduler_hot_path.py`` and ``sim_speed.py`` of a base checkout (e.g.
a ``git worktree`` of the commit before the change) and of this one, interleaved, each with
its own sources, and reports this/base ratios of the medians. Writes
``benchmarks/results/side_by_side.json``.

    git worktree add /tmp/base <commit>
    python benchmarks/side_by_side.py --base /tmp/base --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import write_result

HERE = Path(__file__).resolve().parent.parent
CASES = {
    "scheduler_hot_path": [
        "--sizes",
        "1000,10000",
        "--calls",
        "150",
        "--policies",
        "vllm-fcfs,astraea",
    ],
    "sim_speed": ["--rates", "3,6", "--repeats", "1", "--policies", "vllm-fcfs,astraea"],
}


def run_case(root: Path, case: str) -> dict[tuple, float]:
    """Run one benchmark of the checkout at ``root`` on a scratch copy of its results."""
    results = root / "benchmarks" / "results" / f"{case}.json"
    saved = results.read_bytes() if results.exists() else None
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    try:
        subprocess.run(
            [sys.executable, f"benchmarks/{case}.py", *CASES[case]],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
        points = json.loads(results.read_text())["points"]
    finally:  # the checkout's recorded result stays what it was
        if saved is not None:
            results.write_bytes(saved)
    if case == "scheduler_hot_path":
        return {(p["policy"], p["active_jobs"]): p["schedule_ms_median"] for p in points}
    return {(p["policy"], p["rate"]): p["wall_seconds_median"] for p in points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="root of the base checkout")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A pairs")
    parser.add_argument(
        "--this", type=Path, default=HERE, help="root of the checkout to compare (default: here)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:  # this checkout, frozen for the whole run
        mine = Path(tmp) / "this"
        shutil.copytree(args.this / "src", mine / "src")
        shutil.copytree(args.this / "benchmarks", mine / "benchmarks")
        trees = {"base": args.base.resolve(), "this": mine}
        samples: dict[str, dict[str, dict[tuple, list[float]]]] = {}
        for r in range(args.rounds):
            order = (
                ["base", "this", "this", "base"] if r % 2 == 0 else ["this", "base", "base", "this"]
            )
            for case in CASES:
                for name in order:
                    for key, value in run_case(trees[name], case).items():
                        samples.setdefault(case, {}).setdefault(name, {}).setdefault(
                            key, []
                        ).append(value)
                    print(f"round {r + 1} {case} {name}", flush=True)
    rows = []
    for case, by_tree in samples.items():
        for key in sorted(by_tree["base"]):
            base = statistics.median(by_tree["base"][key])
            this = statistics.median(by_tree["this"][key])
            rows.append(
                {
                    "case": case,
                    "policy": key[0],
                    "size": key[1],
                    "base_median": base,
                    "this_median": this,
                    "ratio": this / base,
                    "samples": {"base": by_tree["base"][key], "this": by_tree["this"][key]},
                }
            )
            print(
                f"{case:20} {key[0]:10} {key[1]:>6}  base {base:.4g}  this {this:.4g}  "
                f"ratio {this / base:.3f}"
            )
    load = os.getloadavg()
    write_result(
        "side_by_side",
        {
            "base": str(args.base),
            "this": str(args.this),
            "rounds": args.rounds,
            "load_average": load,
            "rows": rows,
            "worst_ratio": max(r["ratio"] for r in rows),
        },
    )


if __name__ == "__main__":
    main()
