"""The limit issue's targets on hand-made benchmark results whose every ratio is worked out."""

import pytest

from astraea.experiments.limit_targets import NOT_APPLICABLE, PEERS, evaluate, points
from astraea.experiments.targets import FAIL, MISSING, PASS


def mix(astraea, best, *, peer="lamps", fcfs=None, p99=None, free_top=0.9, sustain=1.0,
        vs_limit=None, reference=None, rates=None):  # fmt: skip
    """One ``limit_gap`` result: every peer but ``peer`` 10% behind the best."""
    rates = rates or [1.0, 2.0, 3.0][: len(astraea)]
    jct = {p: [b * 1.1 for b in best] for p in PEERS}
    jct[peer] = list(best)
    if fcfs is not None:
        jct["vllm-fcfs"] = list(fcfs)
    jct["astraea"] = list(astraea)
    return {
        "rates": rates,
        "avg_jct": jct,
        "sustainable_vs_limit": {"astraea": sustain},
        "astraea_vs_vllm_fcfs": [a / f for a, f in zip(astraea, jct["vllm-fcfs"], strict=True)],
        "astraea_p99_vs_vllm_fcfs": p99 or [1.0] * len(astraea),
        "astraea_vs_limit": vs_limit or [1.0] * len(astraea),
        "free_link_vs_best_peer": [1.0] * (len(astraea) - 1) + [free_top],
        "reference": reference,
    }


def infercept(**overrides):
    rates = [1.0, 3.0, 5.0]
    out = {
        "infercept/llama2-7b-a100": mix(
            [10, 20, 34], [10, 21, 40], sustain=0.97, vs_limit=[1.0, 1.1, 1.3], rates=rates
        ),
        "infercept/llama2-13b-2xa100": mix([10, 20, 30], [10, 20, 30], sustain=0.95),
        "infercept/llama2-70b-4xa100": mix([10, 20, 30], [10, 20, 30], sustain=1.0),
    }
    out.update(overrides)
    return out


HOT = [
    {"policy": "astraea", "active_jobs": 1000, "waiting": 300, "schedule_ms_median": 0.8},
    {"policy": "astraea", "active_jobs": 10000, "waiting": 6000, "schedule_ms_median": 12.0},
    {"policy": "vllm-fcfs", "active_jobs": 1000, "waiting": 300, "schedule_ms_median": 0.1},
]


def by_name(targets):
    return {t.name: t for t in targets}


def test_points_name_the_best_peer_at_each_rate():
    pts = points({"m/p": mix([11, 20], [10, 25], peer="infercept")})
    assert [(p.rate, p.peer) for p in pts] == [(1.0, "infercept"), (2.0, "infercept")]
    assert pts[0].ratio == pytest.approx(1.1)
    assert pts[1].ratio == pytest.approx(0.8)


def test_limit_targets_read_the_infercept_profiles():
    t = by_name(evaluate(infercept(), {}, HOT))
    memory = t["sustainable_vs_limit_memory_bound"]
    assert memory.measured == pytest.approx(0.95) and memory.status == PASS
    assert t["sustainable_vs_limit_compute_bound"].status == PASS
    at_three = t["avg_jct_vs_limit_7b_at_3"]
    assert at_three.measured == pytest.approx(1.1) and at_three.status == PASS


def test_a_low_sustainable_rate_fails_and_a_missing_profile_is_not_measured():
    low = infercept(**{"infercept/llama2-13b-2xa100": mix([10], [10], sustain=0.8)})
    assert by_name(evaluate(low, {}, HOT))["sustainable_vs_limit_memory_bound"].status == FAIL
    partial = {"infercept/llama2-7b-a100": infercept()["infercept/llama2-7b-a100"]}
    t = by_name(evaluate(partial, {}, HOT))
    assert t["sustainable_vs_limit_memory_bound"].status == MISSING
    assert t["sustainable_vs_limit_compute_bound"].status == MISSING


def test_worst_point_over_every_mix_is_judged_and_listed():
    others = {"chat/llama2-7b-a100": mix([10, 21.5], [10, 20])}  # 1.075x lamps at 2 jobs/s
    t = by_name(evaluate(infercept(), others, HOT))["worst_vs_best_peer"]
    assert t.measured == pytest.approx(1.075) and t.status == FAIL
    assert "chat/llama2-7b-a100@2: 1.075x lamps" in t.detail
    ok = by_name(evaluate(infercept(), {}, HOT))["worst_vs_best_peer"]
    assert ok.status == PASS and "above 1.02: none" in ok.detail


def test_never_worse_than_vllm_fcfs_avg_and_p99():
    others = {"bfcl/llama2-7b-a100": mix([10, 20], [9, 18], fcfs=[10, 19.5], p99=[1.0, 1.03])}
    t = by_name(evaluate(infercept(), others, HOT))
    avg, p99 = t["worst_vs_vllm_fcfs"], t["worst_p99_vs_vllm_fcfs"]
    assert avg.measured == pytest.approx(20 / 19.5) and avg.status == FAIL
    assert "bfcl/llama2-7b-a100@2" in avg.detail
    assert p99.measured == pytest.approx(1.03) and p99.status == FAIL


def test_top_rate_share_counts_mixes_at_their_highest_rate():
    # 7B infercept: 34 / 40 = 0.85 at its top rate (met); the other two: 1.0
    t = by_name(evaluate(infercept(), {}, HOT))["top_rate_share_le_0.85"]
    assert t.measured == pytest.approx(1 / 3) and t.status == FAIL
    others = {"react/llama2-7b-a100": mix([10, 16], [10, 20], free_top=0.7)}  # 0.8x
    t = by_name(evaluate(infercept(), others, HOT))["top_rate_share_le_0.85"]
    assert t.measured == pytest.approx(2 / 4) and t.status == PASS
    assert "reaches 0.85x on 1 (react/llama2-7b-a100)" in t.detail


def test_reference_rate_judged_only_where_the_limit_allows_it():
    far = {"astraea_vs_vllm_fcfs": 0.95, "limit_vs_vllm_fcfs": 0.94}
    near = {"astraea_vs_vllm_fcfs": 0.72, "limit_vs_vllm_fcfs": 0.70}
    t = by_name(evaluate(infercept(), {"a/p": mix([1], [1], reference=far)}, HOT))
    ref = t["reference_rate_vs_vllm_fcfs"]
    assert ref.status == NOT_APPLICABLE and ref.measured is None
    assert "at most 1.011x the limit" in ref.detail
    t = by_name(evaluate(infercept(), {"a/p": mix([1], [1], reference=far),
                                       "b/p": mix([1], [1], reference=near)}, HOT))  # fmt: skip
    ref = t["reference_rate_vs_vllm_fcfs"]
    assert ref.measured == pytest.approx(0.72) and ref.status == PASS
    assert "allows it on b/p" in ref.detail
    assert by_name(evaluate(infercept(), {}, HOT))["reference_rate_vs_vllm_fcfs"].status == MISSING


def test_hot_path_medians_of_astraea_only():
    t = by_name(evaluate(infercept(), {}, HOT))
    assert t["schedule_ms_at_1000"].measured == 0.8 and t["schedule_ms_at_1000"].status == PASS
    assert t["schedule_ms_at_10000"].status == FAIL
    assert by_name(evaluate(infercept(), {}, []))["schedule_ms_at_1000"].status == MISSING
