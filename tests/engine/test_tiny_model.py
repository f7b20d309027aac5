"""Paged attention against transformers on a tiny random Llama: fast, no bundled model needed.

Tolerance: max abs difference < 1e-4 on float32 logits (observed ~1e-6)."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

from astraea.core.plan import StepPlan  # noqa: E402
from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from astraea.engine.weights import hf_model_config, load_checkpoint  # noqa: E402
from tests.engine.driver import Driver  # noqa: E402
from tests.engine.reference import hf_last_logits  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def tiny_hf():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        eos_token_id=3,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norms, so a swapped norm weight would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


@pytest.fixture
def tiny_runner(tiny_hf):
    config = hf_model_config(tiny_hf.config.to_dict())
    model = LlamaModel.from_tensors(config, tiny_hf.state_dict(), torch.float32)
    engine = EngineConfig(dtype="float32", block_size=4, num_gpu_blocks=40, num_cpu_blocks=8)
    return ModelRunner(model, engine)


def prompt(seed: int, n: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, 97, (n,), generator=g).tolist()


def check(driver: Driver, hf, logits: dict) -> None:
    for job, row in logits.items():
        ref = hf_last_logits(hf, driver.tokens[job])
        assert (row - ref).abs().max().item() < TOL, job
        driver.tokens[job].append(int(row.argmax()))


def test_mixed_prefill_chunk_and_decode_batches_match_transformers(tiny_runner, tiny_hf):
    d = Driver(tiny_runner)
    for job, (seed, n) in {"a": (1, 11), "b": (2, 5), "c": (3, 23)}.items():
        d.add(job, prompt(seed, n))
    first = d.logits(d.plan(d.seq("a"), d.seq("b"), d.seq("c", 9)))
    assert set(first) == {"a", "b"}  # c's first chunk does not sample
    check(d, tiny_hf, first)
    mixed = d.logits(d.plan(d.seq("a"), d.seq("c"), d.seq("b")))  # decodes + c's second chunk
    assert set(mixed) == {"a", "b", "c"}
    check(d, tiny_hf, mixed)
    for _ in range(4):
        check(d, tiny_hf, d.logits(d.plan(d.seq("c"), d.seq("a"), d.seq("b"))))
    d.kv.check_integrity()


def test_mlp_in_row_tiles_matches_transformers(tiny_runner, tiny_hf, monkeypatch):
    import astraea.engine.model as model_module

    monkeypatch.setattr(model_module, "MLP_TILE_ROWS", 7)  # 25 rows: tiles of 7, 7, 7, 4
    d = Driver(tiny_runner)
    for job, (seed, n) in {"a": (1, 11), "b": (2, 5), "c": (3, 9)}.items():
        d.add(job, prompt(seed, n))
    check(d, tiny_hf, d.logits(d.plan(d.seq("a"), d.seq("b"), d.seq("c"))))
    check(d, tiny_hf, d.logits(d.plan(d.seq("a"), d.seq("b"), d.seq("c"))))  # 3 rows: whole


def test_single_token_chunk_that_does_not_sample(tiny_runner, tiny_hf):
    d = Driver(tiny_runner)
    d.add("a", prompt(4, 10))
    d.logits(d.plan(d.seq("a", 9)))
    assert d.logits(d.plan(d.seq("a", 1))).keys() == {"a"}
    d.add("b", prompt(5, 10))
    d.logits(d.plan(d.seq("b", 8)))
    assert d.logits(d.plan(d.seq("b", 1))) == {}  # a 1-token chunk short of the end
    check(d, tiny_hf, d.logits(d.plan(d.seq("b", 1))))


def test_multi_step_decode_plan_equals_single_steps(tiny_runner):
    def prefilled() -> Driver:
        d = Driver(ModelRunner(tiny_runner.model, tiny_runner.config))
        d.add("a", prompt(6, 7))
        d.add("b", prompt(7, 12))
        d.run(d.plan(d.seq("a"), d.seq("b")))
        return d

    single = prefilled()
    single.decode_all(["a", "b"], 3)
    multi = prefilled()
    for job, tokens in multi.tokens.items():
        multi.kv.ensure_tokens(job, len(tokens) + 2)  # what extend_decode_steps allocates
    plan = StepPlan(seqs=[multi.seq("a"), multi.seq("b")], num_steps=3)
    for step in range(3):
        for job, token in multi.runner.execute(plan, multi.tokens, step).items():
            multi.tokens[job].append(token)
    assert multi.tokens == single.tokens
    with pytest.raises(ValueError, match="3-step plan"):
        multi.runner.execute(plan, multi.tokens, 3)


def test_hf_directory_round_trip(tiny_hf, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tiny_hf.save_pretrained(tmp_path)
    vocab = {chr(ord("a") + i): i + 4 for i in range(26)} | {"<s>": 1, "</s>": 3, "<unk>": 0}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    backend.add_special_tokens(["<s>", "</s>"])
    backend.save(str(tmp_path / "tokenizer.json"))
    template = "{% for m in messages %}<s>{{ m['content'] }}</s>{% endfor %}"
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": template, "bos_token": "<s>", "eos_token": "</s>"})
    )
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.config.num_kv_heads == 2 and not checkpoint.config.tie_embeddings
    assert checkpoint.config.eos_token_ids == (3,)
    for name, tensor in tiny_hf.state_dict().items():
        assert torch.equal(checkpoint.tensors[name], tensor), name
    tok = checkpoint.tokenizer
    assert tok.apply_chat_template([{"role": "user", "content": "abc"}]) == [1, 4, 5, 6, 3]
    assert tok.bos_token_id == 1 and tok.is_eos(3)


def test_prepacked_weights_give_the_plain_weights_logits(tiny_hf):
    config = hf_model_config(tiny_hf.config.to_dict())
    runs = {}
    for packed in (False, True):
        model = LlamaModel.from_tensors(config, tiny_hf.state_dict(), torch.float32)
        engine = EngineConfig(
            dtype="float32", block_size=4, num_gpu_blocks=40, num_cpu_blocks=8,
            prepack_weights=packed,
        )  # fmt: skip
        runner = ModelRunner(model, engine)
        assert model.layers[0].qkv_weight.is_mkldnn == packed
        assert model.lm_head.is_mkldnn == packed and not model.embed.is_mkldnn
        d = Driver(runner)
        d.add("a", prompt(8, 13))
        d.add("b", prompt(9, 6))
        rows = []
        for _ in range(4):  # the prefill, then three decode steps
            out = d.logits(d.plan(d.seq("a"), d.seq("b")))
            for job, row in out.items():
                d.tokens[job].append(int(row.argmax()))
            rows.append(out)
        runs[packed] = rows
    for plain, packed in zip(runs[False], runs[True], strict=True):
        for job in plain:
            assert (plain[job] - packed[job]).abs().max().item() < 1e-5
