"""A tiny experiment end to end: results.json, table.md and figures hold every run."""

import json

import pytest

from astraea.experiments import Options, load_results, run_experiment
from astraea.experiments.grids import LLAMA2_PROFILES
from astraea.experiments.runner import run_specs
from astraea.experiments.spec import RunSpec
from tests.fakes import run_cli

POLICIES = ("vllm-fcfs", "fcfs-job")


def test_quick_load_sweep_writes_results_table_and_figures(tmp_path):
    options = Options(quick=True, num_jobs=30, rates=(0.5, 2.0), policies=POLICIES)
    results = run_experiment("load-sweep", options, tmp_path, workers=1, command="test")
    assert len(results.runs) == len(LLAMA2_PROFILES) * 2 * len(POLICIES)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "load-sweep" and saved["version"] == results.version
    assert saved["command"] == "test" and saved["date"]
    assert [(r["profile"], r["rate"], r["policy"]) for r in saved["runs"]] == [
        (p, rate, pol) for p in LLAMA2_PROFILES for rate in (0.5, 2.0) for pol in POLICIES
    ]
    assert all(r["summary"]["jobs"] == 30 for r in saved["runs"])
    analysis = saved["analysis"]["infercept/llama2-7b-a100"]
    assert set(analysis["series"]) == set(POLICIES)
    table = (tmp_path / "table.md").read_text()
    assert "vllm-fcfs" in table and "fcfs-job" in table and "sustainable rate" in table
    for profile in LLAMA2_PROFILES:
        png = tmp_path / f"infercept_{profile}.png"
        assert png.stat().st_size > 10_000
        assert png.name in table
    again = load_results(tmp_path)
    assert [r.summary for r in again.runs] == [r.summary for r in results.runs]


def test_parallel_workers_give_the_same_results_in_spec_order():
    specs = [
        RunSpec("llama2-7b-a100", "infercept", n, 2.0, 0, "vllm-fcfs") for n in (40, 5, 20, 10)
    ]
    seq = run_specs(specs, workers=1)
    par = run_specs(specs, workers=2)
    drop = ("run_wall_seconds", "sim_wall_seconds", "sim_speedup")
    assert [r.spec for r in par] == specs
    assert [{k: v for k, v in r.summary.items() if k not in drop} for r in par] == [
        {k: v for k, v in r.summary.items() if k not in drop} for r in seq
    ]


def test_cli_unknown_experiment_is_a_one_line_error(capsys):
    code, _, err = run_cli(["experiment", "nope"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "nope" in err and "load-sweep" in err


def test_cli_needs_a_name_or_list(capsys):
    assert run_cli(["experiment"], capsys)[0] == 2


@pytest.mark.parametrize("flag", ["--list", "--help"])
def test_cli_lists_every_experiment(flag, capsys):
    code, out, _ = run_cli(["experiment", flag], capsys)
    assert code == 0
    for name in ("load-sweep", "ablations", "kv-sweep", "mixes"):
        assert name in out


def test_cli_runs_a_tiny_experiment(tmp_path, capsys):
    args = ["experiment", "mixes", "--quick", "--workers", "1", "--jobs", "5"]
    code, _, _ = run_cli([*args, "--policies", "vllm-fcfs", "--out", str(tmp_path)], capsys)
    assert code == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {r["workload"] for r in saved["runs"]} == {"autellix", "continuum"}
    assert (tmp_path / "table.md").exists()
