"""The runner on a tiny random model (torch only): dtype choice, empty plans, bf16 path."""

import pytest

torch = pytest.importorskip("torch")

from astraea.core.plan import StepPlan  # noqa: E402
from astraea.engine import runner as runner_module  # noqa: E402
from astraea.engine.config import EngineConfig, ModelConfig  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.runner import ModelRunner, resolve_dtype  # noqa: E402
from tests.engine.driver import Driver  # noqa: E402

TINY = ModelConfig(
    vocab_size=50,
    hidden_size=32,
    intermediate_size=40,
    num_layers=2,
    num_heads=4,
    num_kv_heads=1,
    head_dim=8,
    max_position=64,
)


def random_tensors(config: ModelConfig) -> dict:
    g = torch.Generator().manual_seed(0)
    h, kv = config.hidden_size, config.num_kv_heads * config.head_dim

    def rand(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    tensors = {"model.embed_tokens.weight": rand(config.vocab_size, h)}
    tensors["model.norm.weight"] = torch.ones(h)
    for i in range(config.num_layers):
        p = f"model.layers.{i}."
        tensors |= {
            p + "input_layernorm.weight": torch.ones(h),
            p + "post_attention_layernorm.weight": torch.ones(h),
            p + "self_attn.q_proj.weight": rand(config.num_heads * config.head_dim, h),
            p + "self_attn.k_proj.weight": rand(kv, h),
            p + "self_attn.v_proj.weight": rand(kv, h),
            p + "self_attn.o_proj.weight": rand(h, config.num_heads * config.head_dim),
            p + "mlp.gate_proj.weight": rand(config.intermediate_size, h),
            p + "mlp.up_proj.weight": rand(config.intermediate_size, h),
            p + "mlp.down_proj.weight": rand(h, config.intermediate_size),
        }
    return tensors


def make_runner(dtype: str = "float32") -> ModelRunner:
    engine = EngineConfig(dtype=dtype, block_size=4, num_gpu_blocks=32)
    model = LlamaModel.from_tensors(TINY, random_tensors(TINY), resolve_dtype(engine))
    return ModelRunner(model, engine)


def test_auto_dtype_follows_the_hardware(monkeypatch):
    assert resolve_dtype(EngineConfig(dtype="float32")) is torch.float32
    assert resolve_dtype(EngineConfig(device="cuda")) is torch.bfloat16
    monkeypatch.setattr(runner_module, "cpu_has_fast_bf16", lambda: False)
    assert resolve_dtype(EngineConfig()) is torch.float32
    monkeypatch.setattr(runner_module, "cpu_has_fast_bf16", lambda: True)
    assert resolve_dtype(EngineConfig()) is torch.bfloat16


def test_empty_plan_and_position_limit():
    runner = make_runner()
    assert runner.execute(StepPlan(), {}) == {}
    d = Driver(runner)
    d.add("a", [1] * 65)
    with pytest.raises(ValueError, match="maximum"):
        d.run(d.plan(d.seq("a")))


def test_bf16_logits_stay_close_to_fp32():
    logits = {}
    for dtype in ("float32", "bfloat16"):
        d = Driver(make_runner(dtype))
        d.add("a", [3, 1, 4, 1, 5, 9, 2, 6])
        d.run(d.plan(d.seq("a", 5)))
        logits[dtype] = d.logits(d.plan(d.seq("a")))["a"]
    assert logits["bfloat16"].dtype is torch.float32
    assert (logits["bfloat16"] - logits["float32"]).abs().max().item() < 0.1
