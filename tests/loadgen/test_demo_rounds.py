"""``astraea demo``'s rounds: alternating order, per-round ratios and spread, the load
warning, and the KV-size flags under vLLM's names with the old ones hidden."""

from __future__ import annotations

import dataclasses

import pytest

from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.loadgen import BenchOptions
from astraea.loadgen.live import LoadProbe, alternating, bench_rounds
from tests.server.conftest import tiny_engine


def test_rounds_alternate_the_order():
    assert alternating(["a", "b"], 4) == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]


def test_bench_rounds_runs_every_policy_each_round_and_probes_the_machine(tiny_model, tokenizer):
    specs = [
        JobSpec(f"j{i}", 0.02 * i, "agent", (Segment(10, 4, ToolCall("t", 0.02)), Segment(6, 3)))
        for i in range(2)
    ]
    seen: list[tuple[int, str]] = []
    results = bench_rounds(
        lambda p: tiny_engine(tiny_model, tokenizer, p),
        specs,
        ["vllm-fcfs", "astraea"],
        2,
        BenchOptions("", "tiny"),
        on_start=lambda r, p: seen.append((r, p)),
    )
    assert seen == [(0, "vllm-fcfs"), (0, "astraea"), (1, "astraea"), (1, "vllm-fcfs")]
    for row in results:
        for report, probe in row:
            assert report.summary["completed"] == 2
            assert probe.others_cores is None or probe.others_cores >= 0.0


@dataclasses.dataclass
class _Report:
    label: str
    avg_jct: float

    @property
    def summary(self) -> dict:
        return {"avg_jct": self.avg_jct, "failed": 0}


def test_record_gives_each_round_its_ratio_and_warns_when_others_loaded_the_cpu():
    from astraea.commands.demo import _record

    quiet, busy = LoadProbe(0.2, 0.3, 0.1), LoadProbe(1.5, 2.0, 0.9)
    results = [
        [(_Report("vllm-fcfs", 100.0), quiet), (_Report("astraea", 60.0), quiet)],
        [(_Report("astraea", 90.0), busy), (_Report("vllm-fcfs", 120.0), quiet)],
    ]
    record = _record(results, ["vllm-fcfs", "astraea"])
    assert [r["astraea"]["ratio"] for r in record["rounds"]] == [0.6, 0.75]
    assert record["spread"]["astraea"] == [0.6, 0.75]
    assert record["median_ratio"]["astraea"] == pytest.approx(0.675)
    assert record["loaded"] and record["max_others_cores"] == 0.9
    assert not _record(results[:1], ["vllm-fcfs", "astraea"])["loaded"]


def test_demo_takes_vllm_flag_names_and_hides_the_old_ones():
    import typer

    from astraea.cli import app

    demo = typer.main.get_command(app).commands["demo"]
    opts = {o: p for p in demo.params for o in p.opts}
    assert not opts["--num-gpu-blocks-override"].hidden and opts["--gpu-blocks"].hidden
    assert not opts["--max-num-batched-tokens"].hidden and opts["--max-batched-tokens"].hidden
    assert all(p.help for p in demo.params if getattr(p, "param_type_name", "") == "option")
