"""Re-run the simulator runs behind docs/results.md and check every result is unchanged.

A refactor of the scheduler mechanism must not move a single JCT: this reruns the runs stored
in ``docs/results/*/results.json`` (all of them, or every k-th with ``--every k``) and
compares each summary field by field, exactly (floats to the last digit), ignoring only the
fields that time the simulator itself. Writes ``benchmarks/results/sim_identity.json``.

    python benchmarks/sim_identity.py                 # every stored run (~45 CPU-minutes)
    python benchmarks/sim_identity.py --every 10      # a tenth, spread over every experiment
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import write_result

from astraea.experiments.runner import run_specs
from astraea.experiments.spec import load_results

ROOT = Path(__file__).resolve().parent.parent
WALL_CLOCK = {"sim_wall_seconds", "sim_speedup", "run_wall_seconds"}


def _differences(stored: dict, fresh: dict) -> dict[str, tuple[object, object]]:
    keys = (stored.keys() | fresh.keys()) - WALL_CLOCK
    return {k: (stored.get(k), fresh.get(k)) for k in sorted(keys) if stored.get(k) != fresh.get(k)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="rerun every k-th stored run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--experiments", default="", help="comma-separated subset")
    args = parser.parse_args()
    wanted = {e for e in args.experiments.split(",") if e}
    stored = []
    for path in sorted((ROOT / "docs" / "results").glob("*/results.json")):
        results = load_results(path)
        if wanted and results.experiment not in wanted:
            continue
        stored += [(results.experiment, r) for r in results.runs[:: args.every]]
    start = time.perf_counter()
    fresh = run_specs([r.spec for _, r in stored], workers=args.workers)
    wall = time.perf_counter() - start
    mismatches = []
    for (experiment, old), new in zip(stored, fresh, strict=True):
        diff = _differences(old.summary, new.summary)
        if diff:
            mismatches.append({"experiment": experiment, "spec": old.spec.to_dict(), "diff": diff})
    result = {
        "runs_compared": len(stored),
        "identical": len(stored) - len(mismatches),
        "mismatches": mismatches[:50],
        "num_mismatches": len(mismatches),
        "every": args.every,
        "wall_seconds": round(wall, 1),
    }
    write_result("sim_identity", result)
    print(f"{result['identical']}/{len(stored)} runs identical ({wall:.0f} s)")
    for m in mismatches[:10]:
        print(m["experiment"], m["spec"]["policy"], m["spec"]["rate"], list(m["diff"])[:5])
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
