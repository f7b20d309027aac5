"""The JSONL trace format: round trip, skipping rules, and one error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.workloads import (
    TraceFormatError,
    generate_workload,
    job_from_dict,
    job_to_dict,
    read_trace,
    write_trace,
)

GOOD = {
    "job_id": "j0",
    "arrival": 0.5,
    "category": "math",
    "segments": [
        {"input_tokens": 10, "output_tokens": 5, "tool": {"name": "math", "latency": 0.25}},
        {"input_tokens": 3, "output_tokens": 7, "tool": None},
    ],
}


def _job(**changes: object) -> dict:
    obj = json.loads(json.dumps(GOOD))
    obj.update(changes)
    return obj


def _seg(index: int, **changes: object) -> dict:
    obj = _job()
    obj["segments"][index].update(changes)
    return obj


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["infercept", "autellix", "continuum"])
def test_round_trip_of_generated_jobs(tmp_path: Path, name: str) -> None:
    jobs = generate_workload(name, 50, 2.0, seed=3)
    path = tmp_path / "t.jsonl"
    write_trace(jobs, path)
    assert read_trace(path) == jobs


def test_dict_round_trip_and_exact_floats() -> None:
    job = JobSpec(
        "x",
        0.1 + 0.2,
        "c",
        (Segment(1, 2, ToolCall("t", 1e-5 / 3)), Segment(4, 5)),
    )
    assert job_from_dict(json.loads(json.dumps(job_to_dict(job)))) == job


def test_sorted_by_arrival_stable_skips_blank_comment_and_extra_keys(tmp_path: Path) -> None:
    lines = [
        "# a comment",
        json.dumps(_job(job_id="late", arrival=5)),
        "",
        "   ",
        json.dumps(_job(job_id="tie-a", arrival=1, meta={"source": "test"})),
        json.dumps(_job(job_id="tie-b", arrival=1, note="ignored")),
        "  # indented comment",
    ]
    jobs = read_trace(_write(tmp_path / "t.jsonl", lines))
    assert [j.job_id for j in jobs] == ["tie-a", "tie-b", "late"]
    assert jobs[0].segments[0].tool == ToolCall("math", 0.25)
    assert jobs[0].total_tokens == 25


BAD_LINES = [
    ("{not json", "invalid JSON"),
    ('{"job_id": "a",}', "invalid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "job_id"}), "missing field 'job_id'"),
    (json.dumps(_job(job_id=7)), "job_id must be a non-empty string"),
    (json.dumps(_job(job_id="")), "job_id must be a non-empty string"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "arrival"}), "missing field 'arrival'"),
    (json.dumps(_job(arrival="1")), "arrival must be a finite number >= 0"),
    (json.dumps(_job(arrival=True)), "arrival must be a finite number >= 0"),
    (json.dumps(_job(arrival=-1)), "arrival must be a finite number >= 0"),
    (json.dumps(_job()).replace('"arrival": 0.5', '"arrival": NaN'), "non-finite number NaN"),
    (json.dumps(_job()).replace('"arrival": 0.5', '"arrival": Infinity'), "non-finite"),
    (json.dumps(_job()).replace('"arrival": 0.5', '"arrival": 1e999'), "arrival must be a finite"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "category"}), "missing field 'category'"),
    (json.dumps(_job(category=None)), "category must be a non-empty string"),
    (json.dumps(_job(segments=[])), "segments must be a non-empty list"),
    (json.dumps(_job(segments={"a": 1})), "segments must be a non-empty list"),
    (json.dumps(_job(segments=[5])), "segment 0: must be an object"),
    (json.dumps(_seg(1, input_tokens=0)), "segment 1: input_tokens must be an integer >= 1"),
    (json.dumps(_seg(1, output_tokens=0)), "segment 1: output_tokens must be an integer >= 1"),
    (json.dumps(_seg(1, output_tokens=True)), "segment 1: output_tokens must be an integer >= 1"),
    (json.dumps(_seg(1, output_tokens=2.0)), "segment 1: output_tokens must be an integer >= 1"),
    (json.dumps(_seg(0, input_tokens="9")), "segment 0: input_tokens must be an integer >= 1"),
    (json.dumps(_seg(0, input_tokens=-4)), "segment 0: input_tokens must be an integer >= 1"),
    (json.dumps(_seg(0, extra=1)), "segment 0: unknown field(s) 'extra'"),
    (json.dumps(_seg(1, tool={"name": "x", "latency": 1})), "the last segment must have tool null"),
    (json.dumps(_seg(0, tool=None)), "segment 0: only the last segment may have tool null"),
    (json.dumps(_seg(0, tool="search")), "segment 0: tool must be an object or null"),
    (json.dumps(_seg(0, tool={"name": "", "latency": 1})), "tool name must be a non-empty"),
    (json.dumps(_seg(0, tool={"name": "t", "latency": -1})), "tool latency must be a finite"),
    (json.dumps(_seg(0, tool={"name": "t", "latency": False})), "tool latency must be a finite"),
    (json.dumps(_seg(0, tool={"name": "t"})), "segment 0: tool missing field 'latency'"),
    (json.dumps(_seg(0, tool={"name": "t", "latency": 1, "x": 2})), "unknown tool field(s) 'x'"),
]


@pytest.mark.parametrize(("line", "expected"), BAD_LINES)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    path = _write(tmp_path / "trace.jsonl", [json.dumps(GOOD), "", "# comment", line])
    with pytest.raises(TraceFormatError) as info:
        read_trace(path)
    message = str(info.value)
    assert message.startswith(f"{path}:4: "), message
    assert expected in message
    assert "\n" not in message


def test_missing_tool_key_is_an_error(tmp_path: Path) -> None:
    obj = _job()
    del obj["segments"][1]["tool"]
    path = _write(tmp_path / "t.jsonl", [json.dumps(obj)])
    with pytest.raises(TraceFormatError, match=r":1: segment 1: missing field 'tool'"):
        read_trace(path)


def test_duplicate_job_id(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [json.dumps(GOOD), "# x", json.dumps(_job(arrival=2))])
    with pytest.raises(
        TraceFormatError, match=r":3: duplicate job_id 'j0' \(first seen on line 1\)"
    ):
        read_trace(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n\n"])
def test_empty_trace(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TraceFormatError, match="empty trace") as info:
        read_trace(path)
    assert str(path) in str(info.value)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\xfe\n")
    with pytest.raises(TraceFormatError, match=r":2: not valid UTF-8"):
        read_trace(path)


def test_job_from_dict_message_has_no_location_prefix() -> None:
    with pytest.raises(TraceFormatError) as info:
        job_from_dict(_seg(1, output_tokens=0))
    assert str(info.value) == "segment 1: output_tokens must be an integer >= 1 (got 0)"
    assert isinstance(info.value, ValueError)


def test_write_refuses_what_read_rejects(tmp_path: Path) -> None:
    job = job_from_dict(GOOD)
    with pytest.raises(ValueError, match="empty"):
        write_trace([], tmp_path / "a.jsonl")
    with pytest.raises(ValueError, match="duplicate"):
        write_trace([job, job], tmp_path / "b.jsonl")


def test_documented_example_parses(tmp_path: Path) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"
    example = doc.read_text(encoding="utf-8").split("```jsonl\n", 1)[1].split("```", 1)[0]
    jobs = read_trace(_write(tmp_path / "example.jsonl", example.splitlines()))
    assert [j.job_id for j in jobs] == ["j-1", "j-2"]
    assert jobs[0].total_tokens == 600 + 40 + 12 + 35 + 9 + 120
    assert jobs[0].context_before(2) == 600 + 40 + 12 + 35
