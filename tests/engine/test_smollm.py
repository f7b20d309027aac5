"""SmolLM2-135M-Instruct (the bundled GGUF) against transformers on the same dequantized
weights, float32. Tolerance: max abs difference < 1e-3 on logits (observed ~6e-5)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from tests.engine.driver import Driver  # noqa: E402
from tests.engine.reference import hf_last_logits  # noqa: E402

pytestmark = pytest.mark.slow
TOL = 1e-3
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def chat(tokenizer, text: str) -> list[int]:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}])


@pytest.fixture
def runner(smollm_fp32):
    return ModelRunner(smollm_fp32, EngineConfig(dtype="float32", block_size=8, num_gpu_blocks=96))


def test_chat_template_and_tokens_match_transformers_gguf_tokenizer(smollm):
    tok = smollm.tokenizer
    # transformers' tokenizer built from the same GGUF gives these ids (no digits in the text:
    # its GGUF converter drops SmolLM's digit splitting, which ours keeps).
    assert tok.apply_chat_template(FRANCE) == [
        1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018,
        411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2,
        198, 1, 520, 9531, 198,
    ]  # fmt: skip
    assert tok.encode("2024") == [34, 32, 34, 36]  # one token per digit, as SmolLM's own
    assert tok.decode(tok.encode("Hello, world!")) == "Hello, world!"
    assert tok.is_eos(2) and tok.eos_token == "<|im_end|>" and tok.bos_token == "<|im_start|>"


def test_logits_match_transformers_through_prefill_chunks_and_decodes(smollm, runner, hf_smollm):
    d = Driver(runner)
    tok = smollm.tokenizer
    d.add("short", chat(tok, "Hi"))
    d.add("mid", chat(tok, "What is the capital of France?"))
    d.add("long", chat(tok, "Write a poem about the sea, the sky and all that lies between."))
    steps = [
        lambda: d.plan(d.seq("short"), d.seq("mid"), d.seq("long", 20)),  # long: 1st chunk
        lambda: d.plan(d.seq("short"), d.seq("long"), d.seq("mid")),  # decodes + 2nd chunk
    ]
    for i in range(len(steps) + 4):
        plan = steps[i]() if i < len(steps) else d.plan(*(d.seq(j) for j in d.tokens))
        logits = d.logits(plan)
        assert set(logits) == ({"short", "mid"} if i == 0 else set(d.tokens))
        for job, row in logits.items():
            ref = hf_last_logits(hf_smollm, d.tokens[job])
            assert (row - ref).abs().max().item() < TOL, (i, job)
            d.tokens[job].append(int(row.argmax()))
    d.kv.check_integrity()


def generate(runner, prompts: dict[str, list[int]], max_tokens: int, eos: int) -> dict:
    """Greedy continuous decoding of a batch; each job stops at EOS or ``max_tokens``."""
    d = Driver(runner)
    for job, tokens in prompts.items():
        d.add(job, tokens)
    active = list(prompts)
    while active:
        out = d.run(d.plan(*(d.seq(j) for j in active)))
        active = [
            j for j in active if out[j] != eos and len(d.tokens[j]) - len(prompts[j]) < max_tokens
        ]
    return {j: d.tokens[j][len(prompts[j]) :] for j in prompts}


def test_greedy_generation_equals_transformers_generate(smollm, runner, hf_smollm):
    tok, eos = smollm.tokenizer, smollm.config.eos_token_ids[0]
    prompts = {
        "story": chat(tok, "Tell me a short story about a brave little robot."),
        "list": chat(tok, "List three colours."),
    }
    ours = generate(runner, prompts, 20, eos)
    for job, tokens in prompts.items():
        with torch.inference_mode():
            ref = hf_smollm.generate(
                torch.tensor([tokens]),
                attention_mask=torch.ones(1, len(tokens), dtype=torch.long),
                max_new_tokens=20,
                do_sample=False,
            )
        assert ours[job] == ref[0, len(tokens) :].tolist(), job


def test_capital_of_france_is_paris(smollm, runner):
    tok, eos = smollm.tokenizer, smollm.config.eos_token_ids[0]
    answer = generate(runner, {"q": tok.apply_chat_template(FRANCE)}, 24, eos)["q"]
    assert "Paris" in tok.decode(answer)
