"""The targets of the issue "astraea wins on every agent mix, and gets close to the memory
limit", judged on the saved results of the benchmarks that measure them.

Reads benchmarks/results/limit_gap.json (``python benchmarks/limit_gap.py --jobs 1000``),
limit_gap_mixes.json (``--mixes others --jobs 400``), limit_gap_profiles.json if it is there
(``--mixes profiles --jobs 400``: those mixes on the 13B and 70B profiles) and
scheduler_hot_path.json (``python benchmarks/scheduler_hot_path.py``), judges each target
(``astraea.experiments.limit_targets``) and writes benchmarks/results/limit_targets.json
with the sources' commands and commits. Runs nothing itself: run those three first.

    python benchmarks/limit_targets.py
"""

from __future__ import annotations

import json
import sys

from _common import RESULTS, write_result

from astraea.experiments.limit_targets import evaluate

SOURCES = ("limit_gap", "limit_gap_mixes", "scheduler_hot_path")
OPTIONAL = ("limit_gap_profiles",)


def main() -> None:
    loaded = {}
    for name in SOURCES:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            sys.exit(f"error: {path} is missing; run benchmarks/{name.split('_mixes')[0]}.py")
        loaded[name] = json.loads(path.read_text())
    for name in OPTIONAL:
        path = RESULTS / f"{name}.json"
        if path.exists():
            loaded[name] = json.loads(path.read_text())
    mixes = dict(loaded["limit_gap_mixes"]["results"])
    mixes.update(loaded.get("limit_gap_profiles", {}).get("results", {}))
    targets = evaluate(
        loaded["limit_gap"]["results"],
        mixes,
        loaded["scheduler_hot_path"]["points"],
    )
    for t in targets:
        value = "-" if t.measured is None else f"{t.measured:.4g}"
        print(f"{t.status:>14}  {t.name:36s} {value:>8} {t.op} {t.threshold:g}  {t.detail}")
    sources = {
        name: {k: d.get(k) for k in ("command", "date", "git_commit")} for name, d in loaded.items()
    }
    passed = sum(t.status == "pass" for t in targets)
    write_result(
        "limit_targets",
        {
            "sources": sources,
            "passed": passed,
            "judged": sum(t.status in ("pass", "fail") for t in targets),
            "targets": [t.to_dict() for t in targets],
        },
    )


if __name__ == "__main__":
    main()
