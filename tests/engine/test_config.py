"""Config validation: bad values fail at construction, with the field's name."""

import pytest

from astraea.engine.config import EngineConfig, ModelConfig


def small(**overrides) -> ModelConfig:
    fields = dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
    )
    fields.update(overrides)
    return ModelConfig(**fields)


def test_model_config_derived_values():
    config = small()
    assert config.q_per_kv == 2
    assert config.kv_bytes_per_token(2) == 2 * 2 * 2 * 8 * 2


def test_smollm_kv_bytes_match_the_documented_figure():
    config = small(
        vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9, num_kv_heads=3, head_dim=64
    )
    assert config.kv_bytes_per_token(2) == 23040  # shared/VLLM_CPU.md, bf16
    engine = EngineConfig(num_gpu_blocks=10, block_size=16)
    assert engine.kv_pool_bytes(config, 4) == 10 * 16 * 46080


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_heads": 3}, "multiple of num_kv_heads"),
        ({"head_dim": 7}, "even"),
        ({"num_layers": 0}, "num_layers"),
    ],
)
def test_model_config_rejects_bad_shapes(overrides, message):
    with pytest.raises(ValueError, match=message):
        small(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"device": "tpu"}, "device"),
        ({"dtype": "int8"}, "dtype"),
        ({"block_size": 0}, "block_size"),
        ({"num_cpu_blocks": -1}, "num_cpu_blocks"),
        ({"num_threads": 0}, "num_threads"),
    ],
)
def test_engine_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        EngineConfig(**overrides)


def test_scheduler_config_agrees_with_the_engine_pools():
    engine = EngineConfig(block_size=8, num_gpu_blocks=100, num_cpu_blocks=50, max_num_seqs=4)
    sched = engine.scheduler_config(max_steps_per_plan=4)
    assert (sched.num_device_blocks, sched.num_host_blocks, sched.block_size) == (100, 50, 8)
    assert (sched.max_num_seqs, sched.max_steps_per_plan) == (4, 4)
