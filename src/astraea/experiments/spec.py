"""Plain data of an experiment: what one run is, how it is asked for, what came back.

Everything here is small and picklable, so runs can cross process boundaries and results
can be written to JSON and read back (the benchmark re-analyses saved results).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One simulation: these jobs, this policy (with parameters), this engine profile."""

    profile: str
    workload: str
    num_jobs: int
    rate: float
    seed: int
    policy: str
    policy_params: dict[str, Any] = field(default_factory=dict)
    config_overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # the series this run belongs to (a policy, a variant, a setting)

    @property
    def series(self) -> str:
        return self.label or self.policy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True, slots=True)
class Options:
    """How an experiment is asked for; ``None`` keeps the experiment's own choice."""

    quick: bool = False
    num_jobs: int | None = None  # override every group's job count
    seed: int = 0
    rates: tuple[float, ...] | None = None  # override every rate grid (tests, spot checks)
    policies: tuple[str, ...] | None = None  # keep only runs of these policies


@dataclass(slots=True)
class RunResult:
    """A finished run: its spec and the simulation's summary dict (aggregates only)."""

    spec: RunSpec
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "summary": self.summary}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        return cls(spec=RunSpec.from_dict(d), summary=dict(d["summary"]))


@dataclass(slots=True)
class ExperimentResults:
    """All runs of one experiment, in spec order, plus what was skipped and why."""

    experiment: str
    version: str
    description: str
    options: Options
    runs: list[RunResult]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # command, date, wall time, ...
    analysis: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "version": self.version,
            "description": self.description,
            **self.meta,
            "options": asdict(self.options),
            "skipped": self.skipped,
            "analysis": self.analysis,
            "runs": [r.to_dict() for r in self.runs],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentResults:
        fixed = {"experiment", "version", "description", "options", "skipped", "analysis", "runs"}
        opts = dict(d.get("options", {}))
        for key in ("rates", "policies"):
            if opts.get(key) is not None:
                opts[key] = tuple(opts[key])
        return cls(
            experiment=d["experiment"],
            version=d["version"],
            description=d.get("description", ""),
            options=Options(**opts),
            runs=[RunResult.from_dict(r) for r in d["runs"]],
            skipped=list(d.get("skipped", [])),
            meta={k: v for k, v in d.items() if k not in fixed},
            analysis=dict(d.get("analysis", {})),
        )


def load_results(path: Path | str) -> ExperimentResults:
    """Read a ``results.json`` (or the directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    return ExperimentResults.from_dict(json.loads(p.read_text()))
