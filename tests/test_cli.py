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
