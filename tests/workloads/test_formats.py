"""ShareGPT, BurstGPT and Azure traces: small sample files written here from each format's
documentation (see astraea.workloads.sharegpt / csv_traces), mapped to jobs as documented,
and every trace we write validates against docs/trace-format.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astraea.workloads import (
    TraceFormatError,
    generate_workload,
    job_to_dict,
    load_azure,
    load_burstgpt,
    load_sharegpt,
    load_trace,
    read_trace,
    trace_format_names,
    write_trace,
)

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "trace-format.schema.json"


def turn(who: str, chars: int) -> dict:
    return {"from": who, "value": "x" * chars}


SHAREGPT = [
    {  # system + 2 rounds, then an unanswered question (dropped)
        "id": "a",
        "conversations": [
            turn("system", 40),
            turn("human", 400),
            turn("gpt", 800),
            turn("human", 120),
            turn("gpt", 200),
            turn("gpt", 40),  # a second assistant turn in a row: the same call
            turn("human", 80),
        ],
    },
    {"id": "b", "conversations": [turn("human", 4)]},  # no answer: skipped
    {"id": "c", "conversations": [turn("gpt", 20), turn("user", 20), turn("chatgpt", 8)]},
    {"id": "d"},  # no conversations: skipped, as vLLM does
]

BURSTGPT = """Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
45,GPT-4,1087,0,1087,API log
3,ChatGPT,0,231,231,Conversation log
60.5,GPT-4,50,120,170,API log
"""

AZURE_2023 = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:17:03.9799600,4808,10
2023-11-16 18:17:04.0319600,3180,8
2023-11-16 18:17:02.4799600,110,0
"""

AZURE_2024 = """TIMESTAMP,ContextTokens,GeneratedTokens
2024-05-10 00:00:00.0097110+00:00,1024,23
2024-05-10 00:00:01.5097110+00:00,2048,7
"""


@pytest.fixture
def samples(tmp_path: Path) -> dict[str, Path]:
    files = {
        "sharegpt": tmp_path / "sharegpt.json",
        "burstgpt": tmp_path / "burstgpt.csv",
        "azure": tmp_path / "azure_code.csv",
        "azure2024": tmp_path / "azure_code_1week.csv",
    }
    files["sharegpt"].write_text(json.dumps(SHAREGPT))
    files["burstgpt"].write_text(BURSTGPT)
    files["azure"].write_text(AZURE_2023)
    files["azure2024"].write_text(AZURE_2024)
    return files


def test_sharegpt_conversation_becomes_a_job_with_the_user_as_its_tool(samples):
    jobs = load_sharegpt(samples["sharegpt"], think_sd=0.0)
    assert [j.job_id for j in jobs] == ["sharegpt-000000", "sharegpt-000001"]
    first = jobs[0]
    assert [(s.input_tokens, s.output_tokens) for s in first.segments] == [(110, 200), (30, 60)]
    assert first.segments[0].tool.name == "user" and first.segments[0].tool.latency == 5.0
    assert first.segments[-1].tool is None
    # an assistant turn that opens a conversation has nothing to answer: dropped
    assert [(s.input_tokens, s.output_tokens) for s in jobs[1].segments] == [(5, 2)]
    assert all(j.arrival == 0.0 for j in jobs)


def test_sharegpt_arrivals_and_think_times_follow_the_seed(samples):
    a = load_sharegpt(samples["sharegpt"], rate=2.0, seed=3)
    b = load_sharegpt(samples["sharegpt"], rate=2.0, seed=3)
    c = load_sharegpt(samples["sharegpt"], rate=2.0, seed=4)
    assert a == b and a != c
    assert 0 < a[0].arrival < a[1].arrival
    assert a[0].segments[0].tool.latency != 5.0  # drawn (lognormal), not the mean
    assert len(load_sharegpt(samples["sharegpt"], num_jobs=1)) == 1


def test_sharegpt_errors_name_the_entry(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"conversations": [{"from": "robot", "value": "hi"}]}]))
    with pytest.raises(TraceFormatError, match=r"bad.json: entry #0 turn 0: unknown 'from'"):
        load_sharegpt(bad)
    bad.write_text(json.dumps([{"conversations": [turn("human", 10)]}]))
    with pytest.raises(TraceFormatError, match="no conversation"):
        load_sharegpt(bad)


def test_burstgpt_rows_are_one_call_jobs_at_their_timestamps(samples):
    jobs = load_burstgpt(samples["burstgpt"])
    # the failed row (0 response tokens) is skipped; times relative to the first row (3 s)
    assert [(j.arrival, j.category) for j in jobs] == [
        (0.0, "chatgpt"),
        (2.0, "chatgpt"),
        (57.5, "gpt-4"),
    ]
    assert [(j.segments[0].input_tokens, j.segments[0].output_tokens) for j in jobs] == [
        (1, 231),  # a 0-token request counts as 1
        (472, 18),
        (50, 120),
    ]
    assert all(len(j.segments) == 1 and j.segments[0].tool is None for j in jobs)
    assert len(load_burstgpt(samples["burstgpt"], include_failed=True)) == 4


def test_azure_2023_and_2024_rows_are_one_call_jobs(samples):
    jobs = load_azure(samples["azure"])
    assert [j.arrival for j in jobs] == pytest.approx([0.0, 1.5, 1.552])
    assert [(j.segments[0].input_tokens, j.segments[0].output_tokens) for j in jobs] == [
        (110, 1),  # 0 generated tokens count as 1
        (4808, 10),
        (3180, 8),
    ]
    later = load_azure(samples["azure2024"], category="azure-code")
    assert [j.arrival for j in later] == pytest.approx([0.0, 1.5])
    assert {j.category for j in later} == {"azure-code"}


def test_csv_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "azure.csv"
    bad.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:17:03,5\n")
    with pytest.raises(
        TraceFormatError, match=r"azure.csv:1: missing column\(s\) 'GeneratedTokens'"
    ):
        load_azure(bad)
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,5,x\n")
    with pytest.raises(TraceFormatError, match=r"azure\.csv:2: GeneratedTokens must be an integer"):
        load_azure(bad)
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,5,3\n")
    with pytest.raises(TraceFormatError, match=r"azure\.csv:2: TIMESTAMP"):
        load_azure(bad)


def test_every_format_loads_by_name_and_keeps_the_first_n(samples, tmp_path):
    ours = tmp_path / "ours.jsonl"
    write_trace(generate_workload("infercept", 5, 1.0, 0), ours)
    paths = {"jsonl": ours, **samples}
    for fmt in ("jsonl", "sharegpt", "burstgpt", "azure"):
        jobs = load_trace(paths[fmt], fmt, rate=1.0, seed=0)
        assert jobs and len(load_trace(paths[fmt], fmt, num_jobs=1)) == 1
    assert set(trace_format_names()) >= {"jsonl", "infercept", "mooncake", "sharegpt"}
    with pytest.raises(ValueError, match="unknown trace format"):
        load_trace(ours, "parquet")


def test_generated_and_converted_traces_validate_against_the_schema(samples, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    jobs = [
        j
        for name in ("infercept", "autellix", "continuum")
        for j in generate_workload(name, 20, 1.0, 1)
    ]
    jobs += load_sharegpt(samples["sharegpt"], rate=1.0)
    jobs += load_burstgpt(samples["burstgpt"]) + load_azure(samples["azure"])
    out = tmp_path / "all.jsonl"
    write_trace(
        [j.__class__(f"{i}", j.arrival, j.category, j.segments) for i, j in enumerate(jobs)], out
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    for line in lines:
        validator.validate(line)
    assert len(read_trace(out)) == len(lines)
    # and the schema is not vacuous: what the reader rejects, the schema rejects too
    good = job_to_dict(jobs[0])
    for broken in (
        {**good, "arrival": -1},
        {**good, "segments": []},
        {**good, "segments": [{**good["segments"][-1], "output_tokens": 0}]},
        {**good, "segments": [{**good["segments"][-1], "extra": 1}]},
        {
            **good,
            "segments": [
                {"input_tokens": 1, "output_tokens": 1, "tool": {"name": "t", "latency": 1}}
            ],
        },
    ):
        assert not validator.is_valid(broken), broken
