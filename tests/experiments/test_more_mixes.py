"""The more-mixes experiment: every new mix, a grid from light load to past the knee, the split."""

from astraea.experiments import Options, get_experiment
from astraea.experiments.grids import MORE_MIXES, PEERS
from astraea.experiments.more_mixes import mix_set
from astraea.workloads import EVALUATION_MIXES, TUNING_MIXES, WORKLOADS

NEW = {"coding", "bfcl", "react", "toolbench", "lats", "chat"}


def test_every_new_mix_has_a_registered_workload_and_a_set():
    assert {row[0] for row in MORE_MIXES} == NEW
    for workload, profile, full_n, quick_n, grid, quick_grid in MORE_MIXES:
        assert workload in WORKLOADS and profile == "llama2-7b-a100"
        assert mix_set(workload) in ("tuning", "evaluation")
        assert 0 < quick_n < full_n
        assert list(grid) == sorted(set(grid)) and len(grid) >= 8
        assert set(quick_grid) <= set(grid) and len(quick_grid) == 3
    # the held-out side is really held out: at least four of the new mixes
    assert len(NEW & set(EVALUATION_MIXES)) >= 4 and NEW & set(TUNING_MIXES)
    assert mix_set("infercept") == "tuning" and mix_set("nope") == "unsplit"


def test_specs_cover_every_peer_rate_and_honour_overrides():
    e = get_experiment("more-mixes")
    full = e.build(Options())
    assert {s.workload for s in full} == NEW
    assert {s.policy for s in full} >= set(PEERS)
    for workload, _, full_n, _, grid, _ in MORE_MIXES:
        mine = [s for s in full if s.workload == workload]
        assert {s.rate for s in mine} == set(grid) and {s.num_jobs for s in mine} == {full_n}
    small = e.build(Options(num_jobs=5, rates=(0.5,), seed=2))
    assert {(s.num_jobs, s.rate, s.seed) for s in small} == {(5, 0.5, 2)}


def test_quick_run_reports_each_mix_with_its_set(tmp_path):
    from rich.console import Console

    from astraea.experiments import run_experiment

    results = run_experiment(
        "more-mixes",
        Options(num_jobs=4, rates=(0.5,), policies=("vllm-fcfs",)),
        out=tmp_path,
        workers=1,
        console=Console(quiet=True),
    )
    sets = {key.split("/")[0]: a["set"] for key, a in results.analysis.items()}
    assert sets == {w: mix_set(w) for w in NEW}
