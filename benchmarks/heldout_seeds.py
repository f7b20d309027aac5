"""astraea against every peer on held-out mixes with other seeds than limit_gap's.

Past the knee one run moves by a few percent with any small change, so a win or a loss on
seed 0 (benchmarks/limit_gap.py) is checked here on other seeds, on limit_gap's grids for
the held-out mixes react, bfcl and lats (coding is left out: one past-knee run takes tens of
minutes on a 2-core machine). Writes ``benchmarks/results/heldout_seeds.json``.

    python benchmarks/heldout_seeds.py [--seeds 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

from _common import write_result
from limit_gap import MAX_JOBS, OTHERS, OVERLAP, PEERS

from astraea.experiments.runner import run_specs
from astraea.experiments.spec import RunSpec

MIXES = ("react", "bfcl", "lats")
JOBS = 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = [row for row in OTHERS if row[0] in MIXES]
    results = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        specs = [
            RunSpec(
                profile,
                mix,
                min(JOBS, MAX_JOBS.get(mix, JOBS)),
                rate,
                seed,
                policy,
                {},
                OVERLAP,
                label=f"{mix}|{rate}|{policy}",
            )
            for mix, profile, rates in rows
            for rate in rates
            for policy in [*PEERS, "astraea"]
        ]
        jct = {run.spec.label: run.summary["avg_jct"] for run in run_specs(specs, args.workers)}
        for mix, profile, rates in rows:
            points = []
            for rate in rates:
                best, peer = min((jct[f"{mix}|{rate}|{p}"], p) for p in PEERS)
                astraea = jct[f"{mix}|{rate}|astraea"]
                points.append(
                    {
                        "rate": rate,
                        "astraea": astraea,
                        "best_peer": peer,
                        "best_peer_jct": best,
                        "astraea_vs_best_peer": astraea / best,
                    }
                )
            results[f"{mix}/{profile}/seed{seed}"] = points
            print(mix, f"seed {seed}:", [round(p["astraea_vs_best_peer"], 3) for p in points])
    write_result(
        "heldout_seeds",
        {
            "copies": "overlap (copy engines beside compute)",
            "jobs": JOBS,
            "jobs_note": f"at most {MAX_JOBS} for those mixes",
            "wall_seconds": round(time.perf_counter() - started, 1),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
