"""``astraea serve-vllm``: the command line and environment it would start vLLM with."""

from __future__ import annotations

from pathlib import Path

import pytest

from astraea.cli import main


def test_dry_run_shows_the_plugin_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    trace = tmp_path / "t.jsonl"
    main(
        ["serve-vllm", "--dry-run", "--model", str(tmp_path), "--trace", str(trace),
         "--policy-param", "watermark=0.8", "--async-scheduler", "--dtype", "bfloat16"]
    )  # fmt: skip
    env, command = capsys.readouterr().out.strip().splitlines()
    assert f"ASTRAEA_VLLM_TRACE={trace}" in env and "watermark" in env
    assert "--scheduler-cls astraea.integrations.vllm.AstraeaAsyncScheduler" in command
    assert "--middleware astraea.integrations.hints.AstraeaHintsMiddleware" in command
    assert command.endswith("--dtype bfloat16") and f"--model {tmp_path}" in command


def test_stock_leaves_the_plugin_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["serve-vllm", "--dry-run", "--stock", "--model", str(tmp_path)])
    env, command = capsys.readouterr().out.strip().splitlines()
    assert "--scheduler-cls" not in command and "ASTRAEA_VLLM_" not in env


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy-param", "nope=1"], "--policy-param"),
        (["--policy", "no-such"], "unknown policy"),
        (["--vllm-python", "/no/python"], "not found"),
    ],
)
def test_bad_settings_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve-vllm", "--model", str(tmp_path), *args])
    assert done.value.code == 2 and message in capsys.readouterr().err
