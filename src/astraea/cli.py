"""The ``astraea`` command line: thin commands that build inputs and call the library.

Each command lives in its own module under ``astraea/commands/``; this module builds the app
from them and turns usage and input errors into one line on stderr with exit status 2.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Annotated

import typer

from astraea.commands.options import aliased, invoked

app = typer.Typer(
    help="astraea: job-aware scheduling for LLM agents. Simulate agent workloads under "
    "scheduling policies and compare their job completion times (JCT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from astraea import __version__

        typer.echo(f"astraea {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """astraea: job-aware scheduling for LLM agents."""


def _command(name: str, module: str, function: str, aliases: dict[str, str] | None = None) -> None:
    """Register ``astraea NAME`` from ``astraea.commands.MODULE.FUNCTION`` (old option names
    in ``aliases`` keep working, hidden)."""
    target = getattr(import_module(f"astraea.commands.{module}"), function)
    kwargs = {"cls": aliased(aliases)} if aliases else {}
    app.command(name, **kwargs)(target)


_simulate = import_module("astraea.commands.simulate")
_experiment = import_module("astraea.commands.experiment")
_command("simulate", "simulate", "simulate_command", _simulate.ALIASES)
_command("compare", "simulate", "compare_command", _simulate.ALIASES)
_command("workload", "workload", "workload_command")
_command("list", "workload", "list_command")
app.command("experiment", help=_experiment.EXPERIMENT_HELP)(_experiment.experiment_command)
_command("convert-gguf", "convert", "convert_gguf_command")
_command("serve", "serve", "serve_command")
_command("profile", "profile", "profile_command", import_module("astraea.commands.profile").ALIASES)
_command("bench", "bench", "bench_command")
_command("demo", "demo", "demo_command")
import_module("astraea.commands.serve_vllm").register(app)  # `astraea serve-vllm`


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage and input errors become one line on stderr and exit status 2."""
    invoked[:] = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="astraea", standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as err:  # usage errors and bad parameters
        format_message = getattr(err, "format_message", None)
        message = format_message() if format_message else str(err)
        print(f"astraea: error: {message}", file=sys.stderr)
        sys.exit(2)
    except (ValueError, OSError) as err:
        print(f"astraea: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
