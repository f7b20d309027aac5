"""Every ``astraea`` command line in README.md parses against the real CLI (options exist,
values have the right types), so the README cannot drift from the commands."""

import contextlib
import re
import shlex
from pathlib import Path

import click
import pytest
import typer

from astraea.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def command_lines() -> list[str]:
    """The ``astraea ...`` lines of the README's code blocks, continuations joined, comments
    and shell chaining (``&& astraea demo``) handled."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.split(" #", 1)[0].strip()
                if part.startswith("astraea"):
                    lines.append(part)
    return lines


def test_the_readme_has_command_lines():
    assert len(command_lines()) >= 10


@pytest.mark.parametrize("line", command_lines())
def test_readme_command_parses(line):
    group = typer.main.get_command(app)
    args = shlex.split(line)[1:]
    with group.make_context("astraea", list(args), resilient_parsing=False) as ctx:
        pending = [*getattr(ctx, "_protected_args", ()), *ctx.args]  # click >= 8.2 names
        name, command, rest = group.resolve_command(ctx, pending)
        assert command is not None, line
        if "--" in rest and command.context_settings.get("ignore_unknown_options"):
            rest = rest[: rest.index("--")]
        with contextlib.suppress(click.exceptions.Exit):
            command.make_context(name, rest, parent=ctx)


def test_case_only_short_names_are_hidden(capsys):
    """``-p`` (--profile) and ``-P`` (--policy) differ only in case: help shows the long
    names only, and the README line that still uses ``-p`` keeps working through the hidden
    alias (``options.HIDDEN_SHORT``)."""
    from tests.fakes import run_cli

    code, out, _ = run_cli(["simulate", "--help"], capsys)
    assert code == 0 and "--profile" in out and " -p " not in out
    code, out, err = run_cli(["simulate", "-w", "infercept", "-n", "3", "-p", "nope"], capsys)
    assert code == 2 and "unknown cost profile" in err
