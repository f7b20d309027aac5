"""What several commands share: the workload/trace options, loading the jobs they name, the
console, and the command line recorded in every JSON result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperOption

from astraea.core.job import JobSpec
from astraea.workloads.formats import TRACE_FORMATS

console = Console() if sys.stdout.isatty() else Console(width=160)

WorkloadOpt = Annotated[
    str | None,
    typer.Option("--workload", "-w", help="Built-in workload: infercept, autellix, continuum."),
]
TraceOpt = Annotated[
    Path | None,
    typer.Option(
        "--trace",
        "-t",
        help="Trace file instead of a workload: our JSONL, or another format (--trace-format).",
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-n",
        min=1,
        help="How many jobs: a workload generates N (default 200; bench: 20); a trace keeps "
        "its first N by arrival (default: all).",
    ),
]
RateOpt = Annotated[float, typer.Option("--rate", "-r", help="Poisson arrival rate, jobs/s (> 0).")]
TraceFormatOpt = Annotated[
    str,
    typer.Option(
        "--trace-format",
        help="Format of --trace: "
        + "; ".join(f"{f.name} ({f.description})" for f in TRACE_FORMATS.values())
        + " (docs/trace-format.md).",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", "-s", help="Seed of the workload generator.")]
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile", help="Cost profile name (see `astraea list`) or a profile JSON file."
    ),
]
# Short names that differed only in case (-P policy, -p profile) and were easy to mix up:
# help shows the long names only; these keep working, hidden, in commands that have the
# long option (``aliased``).
HIDDEN_SHORT = {"-P": "--policy", "-p": "--profile"}
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the aggregates as JSON here.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a PNG figure here.")]


def load_jobs(
    workload: str | None,
    trace: Path | None,
    jobs: int | None,
    rate: float,
    seed: int,
    trace_format: str = "jsonl",
    default_jobs: int = 200,
) -> tuple[list[JobSpec], dict[str, Any]]:
    """The jobs a command runs (a generated workload or a trace read in its format) and the
    fields that say where they came from (recorded in the JSON results)."""
    from astraea.workloads import generate_workload, load_trace

    if (workload is None) == (trace is None):
        raise typer.BadParameter("give exactly one of --workload NAME or --trace FILE")
    if trace is not None:
        fmt = TRACE_FORMATS.get(trace_format)
        if fmt is None:
            raise typer.BadParameter(
                f"unknown --trace-format {trace_format!r}; use one of: {', '.join(TRACE_FORMATS)}"
            )
        source: dict[str, Any] = {"trace": str(trace), "trace_format": trace_format}
        if jobs is not None:
            source["jobs_requested"] = jobs
        if fmt.uses_rate:  # no arrival times in the file: Poisson at --rate from --seed
            source |= {"rate": rate, "seed": seed}
        return load_trace(trace, trace_format, rate=rate, seed=seed, num_jobs=jobs), source
    assert workload is not None
    n = default_jobs if jobs is None else jobs
    return generate_workload(workload, n, rate, seed), {
        "workload": workload,
        "jobs_requested": n,
        "rate": rate,
        "seed": seed,
    }


invoked: list[str] = []  # the arguments of the running command, for the records it writes


def command_line() -> str:
    """The command being run, as a user would type it (recorded in every JSON result)."""
    return " ".join(["astraea", *(invoked or sys.argv[1:])])


def aliased(aliases: dict[str, str]) -> type[TyperCommand]:
    """A command class that accepts old option names (``{"--old": "--new"}``, also as
    ``--old=VALUE``) as hidden aliases: they are renamed before parsing, so help lists only
    the new, vLLM-aligned names while scripts written for the old ones keep working. The
    ``HIDDEN_SHORT`` names are aliases too wherever the command has their long option."""

    class Aliased(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            names = {o for p in self.params for o in getattr(p, "opts", ())}
            shorts = {s: long for s, long in HIDDEN_SHORT.items() if long in names}
            aliases_here = {**{s: x for s, x in shorts.items() if s not in names}, **aliases}
            renamed, passthrough = [], False
            for arg in args:
                name, eq, value = arg.partition("=")
                if arg == "--":
                    passthrough = True
                if not passthrough and name in aliases_here:
                    arg = aliases_here[name] + eq + value
                renamed.append(arg)
            return super().parse_args(ctx, renamed)

    return Aliased


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """No ``<bool>`` after a flag in help (``--help <bool>``): a flag takes no value."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]
