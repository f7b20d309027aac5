"""Cost-model profiles: plausible magnitudes, exact arithmetic, round trips and clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astraea.sim.profiles import (
    DEFAULT_PROFILE,
    LLAMA2_7B,
    LLAMA2_13B,
    LLAMA2_70B,
    LLAMA31_8B,
    PROFILES,
    CostProfile,
    get_profile,
    kv_bytes_per_token,
    kv_capacity_tokens,
    profile_names,
)

BUILT_IN = ["llama2-7b-a100", "llama2-13b-2xa100", "llama2-70b-4xa100", "llama31-8b-h100"]
ALL = pytest.mark.parametrize("name", BUILT_IN)


def test_registry_has_the_built_ins_and_the_default() -> None:
    assert set(BUILT_IN) <= set(PROFILES)
    assert profile_names() == sorted(PROFILES)
    assert DEFAULT_PROFILE in PROFILES
    for key, profile in PROFILES.items():
        assert profile.name == key


@ALL
def test_iteration_time_is_monotone_in_each_argument(name: str) -> None:
    p = PROFILES[name]
    base = p.iteration_time(100, 10, 5000)
    assert p.iteration_time(101, 10, 5000) > base
    assert p.iteration_time(100, 11, 5000) > base
    assert p.iteration_time(100, 10, 5001) > base
    assert p.iteration_time(0, 0, 0) == p.a > 0


@given(
    st.sampled_from(BUILT_IN),
    st.tuples(*[st.integers(0, 100_000)] * 3),
    st.tuples(*[st.integers(0, 1000)] * 3),
)
def test_iteration_time_never_decreases_when_the_batch_grows(
    name: str, x: tuple[int, int, int], dx: tuple[int, int, int]
) -> None:
    p = PROFILES[name]
    grown = (x[0] + dx[0], x[1] + dx[1], x[2] + dx[2])
    assert p.iteration_time(*grown) >= p.iteration_time(*x)


def test_7b_decode_step_at_batch_1_is_8_to_20_ms() -> None:
    p = get_profile("llama2-7b-a100")
    assert 0.008 <= p.decode_time_per_token(1, 128) <= 0.020
    assert 0.008 <= p.decode_time_per_token(1, 2048) <= 0.020


def test_7b_prefill_of_2k_tokens_is_0_1_to_0_3_s() -> None:
    p = get_profile("llama2-7b-a100")
    assert 0.1 <= p.prefill_time(2048) <= 0.3
    assert 0.1 <= p.prefill_time(2048, chunk=512) <= 0.3


def test_70b_tp4_is_slower_per_token_than_7b() -> None:
    small, big = PROFILES["llama2-7b-a100"], PROFILES["llama2-70b-4xa100"]
    # Batches that fit the 7B cache; past that, 7B's MHA KV reads (4x 70B's GQA per GPU) dominate.
    for batch in (1, 32, 64):
        assert big.decode_time_per_token(batch, 1024) > small.decode_time_per_token(batch, 1024)
    assert big.prefill_time(2048) > small.prefill_time(2048)


def test_8b_on_h100_is_faster_than_7b_on_a100() -> None:
    a100, h100 = PROFILES["llama2-7b-a100"], PROFILES["llama31-8b-h100"]
    assert h100.decode_time_per_token(1, 512) < a100.decode_time_per_token(1, 512)
    assert h100.prefill_time(2048) < a100.prefill_time(2048)


def test_kv_capacity_of_7b_on_a100_is_80k_to_130k_tokens() -> None:
    assert 80_000 <= PROFILES["llama2-7b-a100"].kv_capacity_tokens <= 130_000


def test_parameter_counts_match_the_published_model_sizes() -> None:
    assert LLAMA2_7B.params == 6_738_415_616
    assert LLAMA2_13B.params == 13_015_864_320
    assert LLAMA2_70B.params == 68_976_648_192
    assert LLAMA31_8B.params == 8_030_261_248


def test_kv_bytes_per_token() -> None:
    assert kv_bytes_per_token(32, 32, 128) == 512 * 1024  # Llama-2-7B fp16
    assert kv_bytes_per_token(80, 8, 128) == 320 * 1024  # Llama-2-70B (GQA) fp16
    assert kv_bytes_per_token(32, 8, 128, dtype_bytes=1) == 64 * 1024  # Llama-3.1-8B fp8
    assert PROFILES["llama31-8b-h100"].kv_bytes_per_token == 128 * 1024
    with pytest.raises(ValueError, match="num_kv_heads"):
        kv_bytes_per_token(32, 0, 128)


def test_kv_capacity_tokens_arithmetic_and_overflow() -> None:
    gib = 1 << 30
    assert kv_capacity_tokens(10 * gib, 4 * gib, gib // 1024, 1.0, 2 * gib) == 4 * 1024
    assert kv_capacity_tokens(10 * gib, 0, gib, 0.5, 0) == 5
    with pytest.raises(ValueError, match="does not fit"):
        kv_capacity_tokens(10 * gib, 9 * gib, 1024)
    with pytest.raises(ValueError, match="memory_utilization"):
        kv_capacity_tokens(10 * gib, 0, 1024, 1.5)


@ALL
def test_swap_time_is_linear_in_tokens(name: str) -> None:
    p = PROFILES[name]
    assert p.swap_time(0) == 0.0
    assert p.swap_time(2000) == pytest.approx(2 * p.swap_time(1000))
    assert p.swap_time(1000) == pytest.approx(1000 * p.kv_bytes_per_token / p.host_link_bytes_per_s)


def test_7b_swap_matches_inferceps_profiled_rate_order() -> None:
    # InferCept profiled ~4e-5 s/token for a 6B model on A100 (PCIe); Llama-2-7B's KV is 14% larger.
    per_token = PROFILES["llama2-7b-a100"].swap_time(1)
    assert 3e-5 <= per_token <= 6e-5


@ALL
def test_prefill_time_with_chunks_is_the_sum_over_chunks(name: str) -> None:
    p = PROFILES[name]
    expected = (
        p.iteration_time(512, 0, 100 + 512)
        + p.iteration_time(512, 0, 100 + 1024)
        + p.iteration_time(176, 0, 100 + 1200)
    )
    assert p.prefill_time(1200, context_before=100, chunk=512) == pytest.approx(expected)
    assert p.prefill_time(1200, 100) == pytest.approx(p.iteration_time(1200, 0, 1300))
    assert p.prefill_time(0) == 0.0
    assert p.prefill_time(1200, 100, chunk=1200) == p.prefill_time(1200, 100)


@given(st.integers(0, 20_000), st.integers(0, 50_000), st.integers(1, 4096))
def test_chunking_costs_one_intercept_per_extra_chunk_and_more_attention(
    n: int, ctx: int, chunk: int
) -> None:
    p = PROFILES[DEFAULT_PROFILE]
    whole, chunked = p.prefill_time(n, ctx), p.prefill_time(n, ctx, chunk)
    steps = math.ceil(n / chunk)
    assert chunked >= whole - 1e-12
    assert chunked <= whole + max(0, steps - 1) * p.a + steps * p.e * (ctx + n) + 1e-9


def test_decode_time_per_token_is_one_decode_step() -> None:
    p = PROFILES[DEFAULT_PROFILE]
    assert p.decode_time_per_token(8, 1000) == p.iteration_time(0, 8, 8000)
    assert p.decode_time_per_token() == p.a + p.c


def test_negative_arguments_are_rejected() -> None:
    p = PROFILES[DEFAULT_PROFILE]
    with pytest.raises(ValueError):
        p.iteration_time(-1, 0, 0)
    with pytest.raises(ValueError):
        p.swap_time(-5)
    with pytest.raises(ValueError, match="chunk"):
        p.prefill_time(100, chunk=0)
    with pytest.raises(ValueError):
        p.decode_time_per_token(0)


@ALL
def test_to_dict_from_dict_round_trip(name: str) -> None:
    p = PROFILES[name]
    d = p.to_dict()
    assert CostProfile.from_dict(d) == p
    assert CostProfile.from_dict(json.loads(json.dumps(d))) == p


@ALL
def test_every_profile_says_where_its_numbers_come_from(name: str) -> None:
    source = PROFILES[name].source
    assert "derived" in source and "read" in source and "docs/profiles.md" in source
    assert len(source.splitlines()) >= 8


def test_get_profile_by_name_and_by_json_path(tmp_path: Path) -> None:
    assert get_profile("llama2-70b-4xa100") is PROFILES["llama2-70b-4xa100"]
    custom = PROFILES[DEFAULT_PROFILE].to_dict() | {"name": "mine", "a": 0.02, "source": "ours"}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(custom))
    loaded = get_profile(str(path))
    assert loaded.name == "mine" and loaded.a == 0.02
    assert loaded.iteration_time(0, 1, 0) == pytest.approx(0.02 + loaded.c)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown cost profile") as info:
        get_profile("llama9-1t-tpu")
    for name in BUILT_IN:
        assert name in str(info.value)


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "p.json"
    path.write_text(text)
    return str(path)


def test_missing_json_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read cost profile file"):
        get_profile(str(tmp_path / "nope.json"))


def test_malformed_json_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        get_profile(_write(tmp_path, "{not json"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"a": -0.01}, "'a' must be a finite number > 0"),
        ({"b": 0}, "'b' must be a finite number > 0"),
        ({"e": float("nan")}, "'e' must be a finite number"),
        ({"b": "fast"}, "'b' must be a finite number"),
        ({"kv_capacity_tokens": 1.5}, "'kv_capacity_tokens' must be an integer"),
        ({"tensor_parallel": True}, "'tensor_parallel' must be an integer"),
        ({"host_link_bytes_per_s": 0}, "'host_link_bytes_per_s'"),
        ({"name": ""}, "'name' must be a non-empty string"),
        ({"speed": 3}, "unknown \\['speed'\\]"),
    ],
)
def test_invalid_profile_json_is_a_clear_error(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    bad = PROFILES[DEFAULT_PROFILE].to_dict() | change
    with pytest.raises(ValueError, match="invalid cost profile file") as info:
        get_profile(_write(tmp_path, json.dumps(bad)))
    assert info.match(message)


def test_missing_fields_and_non_objects_are_rejected(tmp_path: Path) -> None:
    partial = PROFILES[DEFAULT_PROFILE].to_dict()
    del partial["e"]
    with pytest.raises(ValueError, match="missing \\['e'\\]"):
        get_profile(_write(tmp_path, json.dumps(partial)))
    with pytest.raises(ValueError, match="JSON object"):
        get_profile(_write(tmp_path, "[1, 2]"))


def test_zero_is_allowed_where_it_means_something() -> None:
    d = PROFILES[DEFAULT_PROFILE].to_dict() | {"c": 0.0, "e": 0, "host_kv_capacity_tokens": 0}
    p = CostProfile.from_dict(d)
    assert p.iteration_time(0, 5, 1000) == p.a


@ALL
def test_reference_variants_change_only_what_they_name(name: str) -> None:
    base = get_profile(name)
    pooled = get_profile(name + "+one-pool")
    assert pooled.kv_capacity_tokens == base.kv_capacity_tokens + base.host_kv_capacity_tokens
    assert pooled.host_kv_capacity_tokens == 0
    fast = get_profile(name + "+free-link")
    assert fast.kv_capacity_tokens == base.kv_capacity_tokens
    assert fast.host_kv_capacity_tokens == base.host_kv_capacity_tokens
    assert fast.swap_time(100_000) < 1e-6 < base.swap_time(100_000)
    assert fast.iteration_time(512, 8, 4096) == base.iteration_time(512, 8, 4096)
    assert CostProfile.from_dict(json.loads(json.dumps(fast.to_dict()))) == fast
