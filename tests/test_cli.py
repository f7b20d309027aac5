"""The command line: JSON outputs with the documented keys, one-line errors, exit codes."""

import json
import subprocess
import sys

import pytest

from tests.fakes import run_cli

REQUIRED_KEYS = {
    "policy",
    "profile",
    "jobs",
    "avg_jct",
    "p50_jct",
    "p90_jct",
    "p99_jct",
    "avg_engine_time",
    "throughput_jobs_per_s",
}


def test_simulate_writes_summary_json_and_plot(tmp_path, capsys):
    out, plot = tmp_path / "s.json", tmp_path / "s.png"
    code, stdout, _ = run_cli(
        [
            "simulate",
            "-w",
            "infercept",
            "-n",
            "40",
            "-r",
            "2",
            "--json",
            str(out),
            "--plot",
            str(plot),
        ],
        capsys,
    )
    assert code == 0
    summary = json.loads(out.read_text())
    assert set(summary) >= REQUIRED_KEYS
    assert summary["jobs"] == 40 and summary["policy"] == "vllm-fcfs"
    assert summary["avg_jct"] >= summary["avg_engine_time"] > 0
    assert plot.stat().st_size > 10_000
    assert "vllm-fcfs" in stdout


def test_compare_runs_every_policy_on_the_same_trace(tmp_path, capsys):
    trace, out = tmp_path / "t.jsonl", tmp_path / "c.json"
    assert run_cli(["workload", "-w", "autellix", "-n", "30", "-o", str(trace)], capsys)[0] == 0
    code, _, _ = run_cli(
        [
            "compare",
            "--policies",
            "vllm-fcfs,fcfs-job",
            "--trace",
            str(trace),
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "c.png"),
        ],
        capsys,
    )
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["policy"] for r in rows] == ["vllm-fcfs", "fcfs-job"]
    assert all(set(r) >= REQUIRED_KEYS and r["jobs"] == 30 for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "-w", "nope"], "unknown workload"),
        (["simulate"], "exactly one of --workload"),
        (["simulate", "-w", "infercept", "--rate", "0"], "rate"),
        (["simulate", "-w", "infercept", "--jobs", "0"], "--jobs"),
        (["simulate", "-w", "infercept", "-P", "nope"], "unknown policy"),
        (["simulate", "-w", "infercept", "-p", "nope"], "unknown cost profile"),
        (["compare", "--policies", ",", "-w", "infercept"], "at least one policy"),
        (["simulate", "--bogus"], "No such option"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message, capsys):
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("astraea: error:") and message in err


def test_unreadable_trace_names_the_line(tmp_path, capsys):
    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"job_id": "a", "arrival": 0, "category": "c", "segments": []}\n')
    code, _, err = run_cli(["simulate", "--trace", str(trace)], capsys)
    assert code == 2 and "bad.jsonl:1" in err and err.count("\n") == 1
    code, _, err = run_cli(["simulate", "--trace", str(tmp_path / "missing.jsonl")], capsys)
    assert code == 2 and "missing.jsonl" in err


def test_console_script_help_and_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "astraea.cli", "simulate", "-w", "nope"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "astraea.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "simulate" in proc.stdout and "compare" in proc.stdout


def test_mooncake_and_infercept_traces_through_the_cli(tmp_path, capsys):
    mooncake = tmp_path / "m.jsonl"
    mooncake.write_text(
        '{"timestamp": 0, "input_length": 1100, "output_length": 20, "hash_ids": [1, 2, 3]}\n'
        '{"timestamp": 4000, "input_length": 1700, "output_length": 30, "hash_ids": [1, 2, 4, 5]}\n'
        '{"timestamp": 500, "input_length": 300, "output_length": 10, "hash_ids": [9]}\n'
    )
    out = tmp_path / "m.json"
    code, _, err = run_cli(
        ["simulate", "--trace", str(mooncake), "--trace-format", "mooncake", "--json", str(out)],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out.read_text())["jobs"] == 2  # the second request continues the first
    infercept = tmp_path / "i.json"
    infercept.write_text(
        json.dumps(
            {
                "a": [
                    {
                        "prompt_tokens": 100,
                        "completion_tokens": 20,
                        "api_time": 0.5,
                        "api_token_length": 30,
                    },
                    {"completion_tokens": 10},
                ],
            }
        )
    )
    code, _, err = run_cli(
        ["simulate", "--trace", str(infercept), "--trace-format", "infercept", "--json", str(out)],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out.read_text())["jobs"] == 1
    code, _, err = run_cli(["simulate", "--trace", str(mooncake), "--trace-format", "csv"], capsys)
    assert code == 2 and "trace-format" in err


def test_version(capsys):
    from astraea import __version__

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"astraea {__version__}"


def test_compare_defaults_include_astraea(tmp_path, capsys):
    out = tmp_path / "c.json"
    code, _, err = run_cli(["compare", "-w", "infercept", "-n", "20", "--json", str(out)], capsys)
    assert code == 0, err
    assert [r["policy"] for r in json.loads(out.read_text())] == [
        "vllm-fcfs",
        "infercept",
        "continuum",
        "astraea",
    ]


@pytest.mark.parametrize(
    ("fmt", "name", "text", "jobs"),
    [
        ("sharegpt", "share.json", None, 2),
        ("burstgpt", "burst.csv", "BURSTGPT", 3),
        ("azure", "azure.csv", "AZURE_2023", 3),
    ],
)
def test_simulate_reads_sharegpt_burstgpt_and_azure(tmp_path, capsys, fmt, name, text, jobs):
    from tests.workloads import test_formats as samples

    trace = tmp_path / name
    trace.write_text(json.dumps(samples.SHAREGPT) if text is None else getattr(samples, text))
    out = tmp_path / "s.json"
    args = ["simulate", "--trace", str(trace), "--trace-format", fmt, "--json", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    summary = json.loads(out.read_text())
    assert summary["jobs"] == jobs and summary["trace_format"] == fmt
    code, _, err = run_cli([*args, "-n", "1"], capsys)  # --jobs keeps the first N of a trace
    assert code == 0, err
    assert json.loads(out.read_text())["jobs"] == 1


def test_workload_converts_a_trace_to_our_jsonl(tmp_path, capsys):
    from astraea.workloads import load_sharegpt, read_trace
    from tests.workloads.test_formats import SHAREGPT

    share, out = tmp_path / "share.json", tmp_path / "out.jsonl"
    share.write_text(json.dumps(SHAREGPT))
    args = ["workload", "--trace", str(share), "--trace-format", "sharegpt", "-r", "3", "-o"]
    code, stdout, err = run_cli([*args, str(out)], capsys)
    assert code == 0, err
    assert read_trace(out) == load_sharegpt(share, rate=3.0, seed=0) and "wrote 2 jobs" in stdout
    code, _, err = run_cli(["workload", "-o", str(out)], capsys)
    assert code == 2 and "exactly one of --workload" in err


def test_old_option_names_still_work_hidden_from_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option
    code, out, _ = run_cli(["simulate", "--help"], capsys)
    assert code == 0 and "--max-num-batched-tokens" in out and "--max-batched-tokens " not in out
    assert "<bool>" not in out  # flags take no value ("--help <bool>" was shown)
    code, _, err = run_cli(
        ["simulate", "-w", "infercept", "-n", "5", "--max-batched-tokens=0"], capsys
    )
    assert code == 2 and "--max-num-batched-tokens" in err  # renamed, then checked (min 1)
    code, out, _ = run_cli(["profile", "--help"], capsys)
    assert "--num-gpu-blocks-override" in out


def _commands() -> dict:
    import typer

    from astraea.cli import app

    return typer.main.get_command(app).commands


# demo.py belongs to another change of issue 14; it is listed here until its options have help
NOT_YET: set[str] = set()


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_has_help(name):
    missing = [
        param.opts[0]
        for param in _commands()[name].params
        if getattr(param, "param_type_name", "") == "option" and not param.hidden
        if not param.help
    ]
    if name in NOT_YET and missing:
        pytest.xfail(f"{name}: no help yet for {missing}")
    assert missing == []


def test_experiment_writes_under_astraea_results_by_default():
    from astraea.commands.experiment import default_out

    assert str(default_out("mixes", False)) == "astraea-results/mixes"
    assert str(default_out("mixes", True)) == "astraea-results/mixes-quick"
