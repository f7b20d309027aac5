"""GGUF -> Hugging Face directory: our loader reads back the same tensors and tokenizer, and
transformers loads it with logits equal to our engine's (float32; < 1e-4 on the tiny random
model, < 1e-3 on SmolLM2, observed ~1e-6 and ~6e-5) and the same chat template rendering."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

from astraea.engine.config import EngineConfig, ModelConfig  # noqa: E402
from astraea.engine.convert import write_hf_dir  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from astraea.engine.tokenizer import Tokenizer  # noqa: E402
from astraea.engine.weights import Checkpoint, load_checkpoint  # noqa: E402
from tests.engine.driver import Driver  # noqa: E402
from tests.fakes import run_cli  # noqa: E402

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXTS = ["Hello, world!", "What is 12345 + 678?", "  spaces\tand\nnewlines  ", "héllo ünïcode"]
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France? 2024"},
]


def tiny_checkpoint(tie: bool) -> Checkpoint:
    """A random 2-layer Llama over a byte-level tokenizer with two ChatML special tokens."""
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = RustTokenizer(models.BPE({ch: i for i, ch in enumerate(alphabet)}, []))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(["<|im_start|>", "<|im_end|>"])  # ids 256, 257
    tokenizer = Tokenizer(backend, TEMPLATE, bos_token_id=256, eos_token_ids=(257,))
    config = ModelConfig(
        vocab_size=258, hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4,
        num_kv_heads=2, head_dim=16, rope_theta=50000.0, rms_norm_eps=1e-5, max_position=512,
        tie_embeddings=tie, bos_token_id=256, eos_token_ids=(257,),
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    h, kv, ff = config.hidden_size, config.num_kv_heads * config.head_dim, config.intermediate_size
    shapes = {"model.embed_tokens.weight": (258, h), "model.norm.weight": (h,)}
    for i in range(config.num_layers):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (h, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, h),
            p + "mlp.gate_proj.weight": (ff, h),
            p + "mlp.up_proj.weight": (ff, h),
            p + "mlp.down_proj.weight": (h, ff),
        }
    if not tie:
        shapes["lm_head.weight"] = (258, h)
    tensors = {
        name: (torch.rand(shape, generator=g) + 0.5)  # norms around 1
        if name.endswith("norm.weight")
        else torch.randn(shape, generator=g) * 0.1
        for name, shape in shapes.items()
    }
    return Checkpoint(None, config, tensors, tokenizer)  # type: ignore[arg-type]


def our_last_logits(checkpoint: Checkpoint, prompts: dict[str, list[int]]) -> dict:
    """Our engine's float32 logits at each prompt's last position (one batched prefill)."""
    model = LlamaModel.from_tensors(checkpoint.config, checkpoint.tensors, torch.float32)
    d = Driver(ModelRunner(model, EngineConfig(dtype="float32", block_size=8, num_gpu_blocks=64)))
    for job, ids in prompts.items():
        d.add(job, ids)
    return d.logits(d.plan(*(d.seq(job) for job in prompts)))


def check_round_trip(checkpoint: Checkpoint, path) -> None:
    back = load_checkpoint(path)
    assert back.config == checkpoint.config
    assert set(back.tensors) == set(checkpoint.tensors) - (
        {"lm_head.weight"} if checkpoint.config.tie_embeddings else set()
    )
    for name, tensor in back.tensors.items():
        assert torch.equal(tensor, checkpoint.tensors[name]), name
    ours, theirs = checkpoint.tokenizer, back.tokenizer
    for text in TEXTS:
        assert theirs.encode(text) == ours.encode(text), text
    assert theirs.apply_chat_template(CHAT) == ours.apply_chat_template(CHAT)
    assert (theirs.bos_token_id, theirs.eos_token_ids) == (ours.bos_token_id, ours.eos_token_ids)


def check_transformers(checkpoint: Checkpoint, path, tol: float) -> None:
    """transformers' Auto classes load the directory and agree with our engine."""
    pytest.importorskip("transformers")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(path)
    ours = checkpoint.tokenizer
    for text in TEXTS:
        assert hf_tok.encode(text, add_special_tokens=False) == ours.encode(text), text
    rendered = hf_tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert rendered == ours.apply_chat_template(CHAT, tokenize=False)
    assert hf_tok.decode(ours.encode(TEXTS[3])) == TEXTS[3]
    hf = AutoModelForCausalLM.from_pretrained(path).eval()
    assert hf.dtype == torch.float32
    prompts = {
        "chat": ours.apply_chat_template(CHAT),
        "plain": ours.encode(TEXTS[1]),
    }
    for job, row in our_last_logits(checkpoint, prompts).items():
        with torch.inference_mode():
            ref = hf(torch.tensor([prompts[job]])).logits[0, -1].float()
        assert (row - ref).abs().max().item() < tol, job


# ---- tiny random model ---------------------------------------------------------------------------
@pytest.mark.parametrize("tie", [True, False])
def test_tiny_round_trip_and_transformers_parity(tmp_path, tie):
    checkpoint = tiny_checkpoint(tie)
    out = write_hf_dir(checkpoint, tmp_path / "hf", "float32")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["tie_word_embeddings"] is tie and config["rope_theta"] == 50000.0
    assert (config["bos_token_id"], config["eos_token_id"], config["torch_dtype"]) == (
        256, 257, "float32"
    )  # fmt: skip
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tok_config["chat_template"] == TEMPLATE
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert (tok_config["bos_token"], tok_config["eos_token"]) == ("<|im_start|>", "<|im_end|>")
    mode = (out / "config.json").stat().st_mode
    assert (out / "model.safetensors").stat().st_mode == mode  # not safetensors' 0600
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen == {"bos_token_id": 256, "eos_token_id": 257, "pad_token_id": 257}
    check_round_trip(checkpoint, out)
    check_transformers(checkpoint, out, tol=1e-4)


def test_half_precision_dtypes_round_to_the_same_values(tmp_path):
    checkpoint = tiny_checkpoint(tie=True)
    for dtype in ("bfloat16", "float16"):
        out = write_hf_dir(checkpoint, tmp_path / dtype, dtype)
        assert json.loads((out / "config.json").read_text())["torch_dtype"] == dtype
        back = load_checkpoint(out, with_tokenizer=False)
        for name, tensor in back.tensors.items():
            expected = checkpoint.tensors[name].to(getattr(torch, dtype)).float()
            assert torch.equal(tensor, expected), (dtype, name)


def test_refuses_a_non_empty_directory_unless_forced(tmp_path):
    checkpoint = tiny_checkpoint(tie=False)
    out = write_hf_dir(checkpoint, tmp_path / "hf")
    with pytest.raises(FileExistsError, match="--force"):
        write_hf_dir(checkpoint, out)
    (out / "model-00002-of-00002.safetensors").write_bytes(b"stale shard")
    write_hf_dir(checkpoint, out, force=True)
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]
    with pytest.raises(ValueError, match="dtype"):
        write_hf_dir(checkpoint, tmp_path / "other", "int8")


def test_cli_converts_a_model_and_errors_in_one_line(tmp_path, capsys):
    src = write_hf_dir(tiny_checkpoint(tie=True), tmp_path / "src")
    out = tmp_path / "out"
    args = ["convert-gguf", str(out), "--model", str(src), "--dtype", "bfloat16"]
    code, stdout, _ = run_cli(args, capsys)
    assert code == 0 and "wrote" in stdout
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    for bad, message in [
        (args, "--force"),  # not empty
        ([*args[:4], "--dtype", "int8"], "dtype"),
        (["convert-gguf", str(tmp_path / "x"), "--model", str(tmp_path / "none")], "exist"),
    ]:
        code, _, err = run_cli(bad, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    code, _, _ = run_cli([*args, "--force"], capsys)
    assert code == 0


# ---- SmolLM2 -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm_dir(smollm, tmp_path_factory):
    return write_hf_dir(smollm, tmp_path_factory.mktemp("smollm") / "hf", "float32")


@pytest.mark.slow
def test_smollm_round_trip(smollm, smollm_dir):
    config = json.loads((smollm_dir / "config.json").read_text())
    assert config["rope_theta"] == 100000.0 and config["tie_word_embeddings"] is True
    assert config["max_position_embeddings"] == 8192
    tok_config = json.loads((smollm_dir / "tokenizer_config.json").read_text())
    assert tok_config["model_max_length"] == 8192
    assert not (set(smollm.tensors) - {"lm_head.weight"}) ^ _saved_names(smollm_dir)
    check_round_trip(smollm, smollm_dir)


@pytest.mark.slow
def test_smollm_loads_in_transformers_with_our_logits(smollm, smollm_dir):
    check_transformers(smollm, smollm_dir, tol=1e-3)


def _saved_names(path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return set(f.keys())
