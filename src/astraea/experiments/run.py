"""Run a named experiment end to end: build specs, skip what cannot run, simulate, report.

Writes ``results.json`` (every run's spec and summary, the command, version and date, the
analysis), the experiment's PNG figures and ``table.md`` under the output directory.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from rich.console import Console

from astraea.experiments.registry import get_experiment
from astraea.experiments.runner import check_runnable, run_specs, summarize_skips
from astraea.experiments.spec import ExperimentResults, Options, RunSpec


def default_out(name: str, quick: bool) -> Path:
    """docs/results/<name>/ (quick runs go to <name>-quick/ so they never replace full ones)."""
    return Path("docs") / "results" / (f"{name}-quick" if quick else name)


def plan(name: str, options: Options) -> tuple[list[RunSpec], list[dict]]:
    """The runs an experiment would make now, and the notes for those it must skip."""
    specs = get_experiment(name).build(options)
    if options.policies is not None:
        specs = [s for s in specs if s.policy in options.policies]
    return check_runnable(specs)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_experiment(
    name: str,
    options: Options | None = None,
    out: Path | None = None,
    workers: int = 2,
    command: str = "",
    console: Console | None = None,
) -> ExperimentResults:
    """Run experiment ``name`` and write its results, figures and table under ``out``."""
    experiment = get_experiment(name)
    options = options or Options()
    console = console or Console()
    out = out if out is not None else default_out(name, options.quick)
    specs, skipped = plan(name, options)
    notes = summarize_skips(skipped)
    for note in notes:
        console.print(f"[yellow]{note}[/yellow]")
    if not specs:
        raise ValueError(f"experiment {name!r}: nothing to run (every run was skipped)")
    console.print(f"{name} v{experiment.version}: {len(specs)} runs on {workers} worker(s)")
    start = time.perf_counter()
    runs = run_specs(specs, workers=workers, console=console)
    wall = time.perf_counter() - start
    results = ExperimentResults(
        experiment=name,
        version=experiment.version,
        description=experiment.description,
        options=options,
        runs=runs,
        skipped=skipped,
        meta={
            "command": command or f"astraea experiment {name}",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git_commit": _git_commit(),
            "workers": workers,
            "wall_seconds": wall,
            "cpu_seconds_in_runs": sum(r.summary.get("run_wall_seconds", 0.0) for r in runs),
            "skip_notes": notes,
        },
    )
    out.mkdir(parents=True, exist_ok=True)
    results.analysis = experiment.report(results, out)
    (out / "results.json").write_text(json.dumps(results.to_dict(), indent=2) + "\n")
    console.print(f"{len(runs)} runs in {wall:.0f} s; wrote {out}/results.json, table.md, figures")
    return results
