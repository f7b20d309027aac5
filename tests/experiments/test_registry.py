"""The experiment registry: names, versions, the runs each experiment asks for."""

import pytest

from astraea.experiments import Options, experiment_names, get_experiment
from astraea.experiments.grids import LLAMA2_PROFILES, PEERS
from astraea.experiments.run import plan
from astraea.experiments.runner import check_runnable, summarize_skips
from astraea.experiments.spec import RunSpec

NAMES = ["load-sweep", "ablations", "kv-sweep", "mixes", "more-mixes"]


def test_names_in_docs_order_each_versioned_and_described():
    assert experiment_names() == NAMES
    for name in NAMES:
        e = get_experiment(name)
        assert e.name == name and e.version and e.description


def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(ValueError, match="load-sweep"):
        get_experiment("nope")


@pytest.mark.parametrize("name", NAMES)
def test_quick_specs_are_fewer_than_full_and_well_formed(name):
    e = get_experiment(name)
    quick, full = e.build(Options(quick=True)), e.build(Options())
    assert 0 < len(quick) < len(full)
    assert max(s.num_jobs for s in quick) <= max(s.num_jobs for s in full)
    for s in quick + full:
        assert s.rate > 0 and s.num_jobs > 0 and s.series
    # the same (profile, workload, rate, series) never appears twice
    keys = [(s.profile, s.workload, s.rate, s.series) for s in full]
    assert len(keys) == len(set(keys))


def test_load_sweep_covers_every_peer_and_llama2_profile_and_honours_overrides():
    specs = get_experiment("load-sweep").build(Options(num_jobs=7, rates=(1.0, 2.0), seed=3))
    assert {s.profile for s in specs} == set(LLAMA2_PROFILES)
    assert {s.policy for s in specs} >= set(PEERS)
    assert {s.rate for s in specs} == {1.0, 2.0}
    assert {(s.num_jobs, s.seed, s.workload) for s in specs} == {(7, 3, "infercept")}


def test_ablations_vary_astraea_parameters_against_vllm_fcfs():
    specs = get_experiment("ablations").build(Options(quick=True))
    params = [s.policy_params for s in specs if s.profile == "llama2-7b-a100"]
    for p in ({"use_mlfq": False}, {"use_hrrn": False}, {"adaptive_kv": False}):
        assert p in params
    assert {"predictor": "history"} in params and {"predictor": "oracle"} in params
    assert any(s.policy == "vllm-fcfs" for s in specs)


def test_unregistered_policies_and_rejected_parameters_are_skipped_with_a_note():
    specs = [
        RunSpec("llama2-7b-a100", "infercept", 5, 1.0, 0, "vllm-fcfs"),
        RunSpec("llama2-7b-a100", "infercept", 5, 2.0, 0, "no-such-policy"),
        RunSpec("llama2-7b-a100", "infercept", 5, 1.0, 0, "vllm-fcfs", {"bogus": 1}),
    ]
    keep, skipped = check_runnable(specs)
    assert keep == specs[:1]
    reasons = [s["reason"] for s in skipped]
    assert "not registered" in reasons[0] and "rejects" in reasons[1]
    assert len(summarize_skips(skipped + skipped)) == 2


def test_policy_filter_keeps_only_the_named_policies():
    specs, _ = plan("load-sweep", Options(quick=True, policies=("vllm-fcfs",)))
    assert specs and {s.policy for s in specs} == {"vllm-fcfs"}
