"""Importers: InferCept's dataset JSON and Mooncake's request traces, on small fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astraea.core.job import Segment, ToolCall
from astraea.workloads import TraceFormatError, load_infercept_dataset, load_mooncake_trace

# Two requests in InferCept's layout ({key: [step, ...]}): counts, then text fields.
INFERCEPT = {
    "5f0c-uuid": [
        {"prompt_tokens": 300, "completion_tokens": 20, "api_time": 0.5, "api_token_length": 40},
        {"prompt_tokens": 360, "completion_tokens": 15, "api_time": 1.25, "api_token_length": 8},
        {"prompt_tokens": 383, "completion_tokens": 30},
    ],
    "9a1d-uuid": [
        {"prompt": "x" * 401, "completion": "y" * 80, "api_token": "z" * 12, "api_time": 2.0},
    ],
}


def _json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _lines(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_infercept_steps_become_segments(tmp_path: Path) -> None:
    jobs = load_infercept_dataset(_json(tmp_path / "exp.json", INFERCEPT))
    assert [j.job_id for j in jobs] == ["infercept-000000", "infercept-000001"]
    assert all(j.arrival == 0.0 and j.category == "infercept" for j in jobs)
    assert jobs[0].segments == (
        Segment(300, 20, ToolCall("infercept", 0.5)),
        Segment(40, 15, ToolCall("infercept", 1.25)),
        Segment(8, 30, None),
    )
    # Text counts as len // 4 tokens; a last step with a call gets a 1-token reply segment.
    assert jobs[1].segments == (Segment(100, 20, ToolCall("infercept", 2.0)), Segment(3, 1, None))


def test_infercept_variants_and_clamps(tmp_path: Path) -> None:
    requests = [
        [
            {"prompt_tokens": 0, "completion_tokens": 0, "api_exec_time": 0.1},
            {"completion_tokens": 4},  # no call: the request ends here
            {"completion_tokens": 9, "api_time": 3.0, "api_token_length": 2},
        ]
    ]
    (job,) = load_infercept_dataset(_json(tmp_path / "list.json", requests), category="qa")
    assert job.segments == (Segment(1, 1, ToolCall("qa", 0.1)), Segment(1, 4, None))


def test_infercept_arrivals_and_sampling(tmp_path: Path) -> None:
    path = _json(tmp_path / "exp.json", INFERCEPT)
    jobs = load_infercept_dataset(path, rate=2.0, seed=1)
    assert 0 < jobs[0].arrival < jobs[1].arrival
    assert jobs == load_infercept_dataset(path, rate=2.0, seed=1)
    sampled = load_infercept_dataset(path, rate=2.0, seed=1, num_jobs=25)
    assert len(sampled) == 25 and len({j.job_id for j in sampled}) == 25
    assert {len(j.segments) for j in sampled} == {2, 3}
    with pytest.raises(ValueError, match="num_jobs"):
        load_infercept_dataset(path, num_jobs=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [\n{"prompt_tokens": 1,}\n]}', r"exp\.json:2: invalid JSON"),
        ('"just a string"', r"exp\.json:1: expected a JSON object or list"),
        ("{}", "no requests"),
        ('{"r1": []}', r"request 'r1': a request must be a non-empty list"),
        ('{"r1": [{"completion_tokens": 3}]}', r"request 'r1' step 0: missing 'prompt_tokens'"),
        ('{"r1": [{"prompt_tokens": 3}]}', r"step 0: missing 'completion_tokens'"),
        ('{"r1": [{"prompt_tokens": 3, "completion_tokens": -1}]}', "completion_tokens must be"),
        ('{"r1": [{"prompt_tokens": 3, "completion_tokens": 2, "api_time": -1}]}', "api_time"),
    ],
)
def test_infercept_errors_name_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "exp.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TraceFormatError, match=expected) as info:
        load_infercept_dataset(path)
    assert str(path) in str(info.value)


def _req(ts: int, n_in: int, n_out: int, hashes: list[int]) -> dict:
    return {"timestamp": ts, "input_length": n_in, "output_length": n_out, "hash_ids": hashes}


MOONCAKE = [
    _req(0, 1100, 50, [1, 2, 3]),  # A: full blocks [1, 2]
    _req(1000, 1500, 20, [9, 8, 7]),  # B: unrelated
    _req(5000, 2000, 60, [1, 2, 10, 11]),  # C: extends A by 2 shared blocks
    _req(6000, 1700, 10, [1, 2, 12, 13]),  # D: shares [1, 2] but C (now open) needs [1, 2, 10]
    _req(7500, 2100, 5, [1, 2, 10, 14, 15]),  # E: extends C's 3 full blocks
]


def test_mooncake_without_grouping(tmp_path: Path) -> None:
    jobs = load_mooncake_trace(_lines(tmp_path / "m.jsonl", MOONCAKE), group_sessions=False)
    assert len(jobs) == 5
    assert [j.arrival for j in jobs] == [0.0, 1.0, 5.0, 6.0, 7.5]
    assert jobs[2].segments == (Segment(2000, 60),)
    assert {j.category for j in jobs} == {"mooncake"}


def test_mooncake_groups_sessions(tmp_path: Path) -> None:
    jobs = load_mooncake_trace(_lines(tmp_path / "m.jsonl", MOONCAKE))
    assert [j.job_id for j in jobs] == ["mooncake-000000", "mooncake-000001", "mooncake-000002"]
    a, b, d = jobs
    assert a.segments == (
        Segment(1100, 50, ToolCall("mooncake", 5.0)),
        Segment(2000 - 2 * 512, 60, ToolCall("mooncake", 2.5)),
        Segment(2100 - 3 * 512, 5, None),
    )
    assert b.segments == (Segment(1500, 20),)
    assert (d.arrival, d.segments) == (6.0, (Segment(1700, 10),))


def test_mooncake_shared_system_block_alone_does_not_group(tmp_path: Path) -> None:
    rows = [_req(0, 1300, 5, [0, 20, 21]), _req(10, 2500, 5, [0, 20, 22, 23, 24])]
    path = _lines(tmp_path / "m.jsonl", rows)
    assert len(load_mooncake_trace(path)) == 1  # shares [0, 20]: two blocks
    assert len(load_mooncake_trace(path, min_shared_blocks=3)) == 2
    one_block = [_req(0, 900, 5, [0, 30]), _req(10, 2500, 5, [0, 31, 32, 33, 34])]
    assert len(load_mooncake_trace(_lines(tmp_path / "n.jsonl", one_block))) == 2


def test_mooncake_sorts_by_timestamp_and_skips_comments(tmp_path: Path) -> None:
    rows = ["# header", _req(3000, 600, 1, [5, 6]), "", _req(1000, 700, 2, [7, 8])]
    jobs = load_mooncake_trace(_lines(tmp_path / "m.jsonl", rows))
    assert [j.arrival for j in jobs] == [1.0, 3.0]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{oops", "invalid JSON"),
        ("[1]", "must be a JSON object"),
        (json.dumps({"timestamp": 1, "input_length": 5, "output_length": 1}), "'hash_ids'"),
        (json.dumps(_req(-1, 5, 1, [1])), "timestamp must be"),
        (json.dumps(_req(1, True, 1, [1])), "input_length must be an integer >= 1"),
        (json.dumps(_req(1, 5, 0, [1])), "output_length must be an integer >= 1"),
        (json.dumps(_req(1, 5, 1, ["a"])), "hash_ids must be a list of integers"),
    ],
)
def test_mooncake_errors_name_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    path = _lines(tmp_path / "m.jsonl", [_req(0, 5, 1, [1]), line])
    with pytest.raises(TraceFormatError, match=expected) as info:
        load_mooncake_trace(path)
    assert str(info.value).startswith(f"{path}:2: ")


def test_mooncake_empty(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("\n# nothing\n")
    with pytest.raises(TraceFormatError, match="empty trace"):
        load_mooncake_trace(path)
