"""Issue 3's targets on a hand-made sweep whose every number is worked out in the comments."""

import pytest

from astraea.experiments.spec import RunResult, RunSpec
from astraea.experiments.targets import FAIL, MISSING, PASS, evaluate

RATES = [1, 2, 3, 4, 5]
CURVES = {
    # sustainable (1.25x): 2 + 0.15/0.4 = 2.375; reference (1.5x): 3.0
    "vllm-fcfs": [100, 110, 150, 300, 400],
    # sustainable: 3 + 0.15/0.2 = 3.75 (1.58x vllm-fcfs); 110 at the reference rate (0.733x)
    "astraea": [100, 102, 110, 130, 200],
    # sustainable: 4 + 0.05/0.4 = 4.125
    "srpt-oracle": [100, 101, 105, 120, 160],
    "fcfs-job": [100, 105, 140, 250, 350],
}
HISTORY = [100, 104, 120, 140, 250]  # gain at 3.0: 0.2 against the oracle's 0.2667


def runs(profile="p", curves=CURVES, labels=None):
    out = []
    for label, avg in curves.items():
        policy = "astraea" if label in ("history-predictor", "astraea (oracle)") else label
        for rate, a in zip(RATES, avg, strict=True):
            spec = RunSpec(profile, "infercept", 10, rate, 0, policy, label=label)
            summary = {"avg_jct": float(a), "p99_jct": 2.0 * a, "avg_engine_time": a - 60.0}
            out.append(RunResult(spec, summary))
    return out


def by_name(targets):
    return {t.name: t for t in targets}


def test_every_target_measured_on_a_full_sweep():
    ablation = runs(curves={"astraea (oracle)": CURVES["astraea"], "history-predictor": HISTORY,
                            "vllm-fcfs": CURVES["vllm-fcfs"]})  # fmt: skip
    t = by_name(evaluate(runs(), ablation)["p"])
    assert t["sustainable_vs_vllm"].measured == pytest.approx(3.75 / 2.375)
    assert t["sustainable_vs_vllm"].status == PASS
    assert t["sustainable_vs_oracle"].measured == pytest.approx(3.75 / 4.125)
    assert t["sustainable_vs_oracle"].status == FAIL
    assert t["ref_avg_jct_vs_vllm"].measured == pytest.approx(110 / 150)
    assert t["ref_avg_jct_vs_vllm"].status == PASS
    assert t["ref_engine_vs_vllm"].measured == pytest.approx(50 / 90)
    assert t["ref_engine_vs_vllm"].status == FAIL
    # 1.1 x 3.75 = 4.125: astraea 130 + 0.125*70, oracle 120 + 0.125*40
    assert t["past_knee_vs_oracle"].measured == pytest.approx(138.75 / 125)
    assert t["past_knee_vs_oracle"].status == PASS
    for name in ("never_worse_avg_vs_vllm", "never_worse_p99_vs_vllm"):
        assert t[name].measured == pytest.approx(1.0) and t[name].status == PASS
    assert t["never_worse_avg_vs_best_peer"].measured == pytest.approx(1.0)
    assert t["beats_best_peer_somewhere"].measured == pytest.approx(130 / 250)
    assert t["beats_best_peer_somewhere"].status == PASS
    assert t["online_predictor_gain_kept"].measured == pytest.approx(0.2 / (40 / 150))
    assert t["online_predictor_gain_kept"].status == FAIL


def test_worse_than_a_peer_at_one_rate_fails_never_worse():
    curves = {**CURVES, "fcfs-job": [100, 101, 140, 250, 350]}
    t = by_name(evaluate(runs(curves=curves))["p"])
    assert t["never_worse_avg_vs_best_peer"].measured == pytest.approx(102 / 101)
    assert t["never_worse_avg_vs_best_peer"].status == FAIL
    assert "worst at 2" in t["never_worse_avg_vs_best_peer"].detail


def test_missing_policies_are_not_measured():
    curves = {k: v for k, v in CURVES.items() if k != "srpt-oracle"}
    t = by_name(evaluate(runs(curves=curves))["p"])
    assert t["sustainable_vs_oracle"].status == MISSING
    assert t["past_knee_vs_oracle"].status == MISSING
    assert t["online_predictor_gain_kept"].status == MISSING  # no ablation runs given
    assert t["sustainable_vs_vllm"].status == PASS
    no_astraea = {k: v for k, v in CURVES.items() if k != "astraea"}
    assert {x.status for x in evaluate(runs(curves=no_astraea))["p"]} == {MISSING}


def test_baseline_never_reaching_one_and_a_half_leaves_reference_targets_unmeasured():
    curves = {**CURVES, "vllm-fcfs": [100, 105, 110, 120, 140]}
    t = by_name(evaluate(runs(curves=curves))["p"])
    assert t["ref_avg_jct_vs_vllm"].status == MISSING
    assert "never reaches" in t["ref_avg_jct_vs_vllm"].detail


def test_one_entry_per_infercept_profile():
    result = evaluate(runs("a") + runs("b"))
    assert list(result) == ["a", "b"] and len(result["a"]) == 10
