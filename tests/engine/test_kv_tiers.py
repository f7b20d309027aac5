"""A job whose KV was swapped out and back, or discarded and recomputed, continues with the
same greedy tokens as one that kept its KV on the device (SmolLM2, float32).

The story of every variant: job A answers a prompt for a few tokens and calls a tool; while
it waits, job B runs and takes device blocks (so A's old blocks are overwritten); the tool
result is appended to A's context, and A resumes."""

import pytest

torch = pytest.importorskip("torch")

from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from tests.engine.driver import Driver  # noqa: E402

pytestmark = pytest.mark.slow
BEFORE_TOOL, AFTER_TOOL = 4, 8


def run_story(smollm, model, mode: str) -> list[int]:
    engine = EngineConfig(dtype="float32", block_size=16, num_gpu_blocks=12, num_cpu_blocks=8)
    d = Driver(ModelRunner(model, engine), num_host_blocks=8)
    tok = smollm.tokenizer
    d.add("A", tok.apply_chat_template([{"role": "user", "content": "What is 2 + 2? Use a tool."}]))
    d.add("B", tok.apply_chat_template([{"role": "user", "content": "Name a large animal."}]))
    d.run(d.plan(d.seq("A")))
    d.decode_all(["A"], BEFORE_TOOL - 1)
    # Tool call: A's KV is kept, swapped out or discarded while B runs.
    a_blocks = set(d.kv.table("A"))
    swap_out = [d.swap_out("A")] if mode == "swap" else []
    if mode == "discard":
        d.discard("A")
    d.run(d.plan(d.seq("B"), swap_out=swap_out))
    d.decode_all(["B"], 2)
    if mode != "keep":
        assert set(d.kv.table("B")) & a_blocks, "B must overwrite A's old blocks"
    # Tool result: new tokens on A's context; A resumes (swap-in, or recompute from 0).
    result = tok.encode("<|im_start|>tool\n4<|im_end|>\n<|im_start|>assistant\n")
    d.tokens["A"].extend(result)
    swap_in = [d.swap_in("A")] if mode == "swap" else []
    if mode == "discard":  # recompute in two chunks, the second one sampling
        d.run(d.plan(d.seq("A", 30), d.seq("B")))
    d.run(d.plan(d.seq("A"), d.seq("B"), swap_in=swap_in))
    d.decode_all(["A"], AFTER_TOOL - 1)
    d.kv.check_integrity()
    return d.tokens["A"]


def test_swap_and_recompute_continue_like_kept_kv(smollm, smollm_fp32):
    kept = run_story(smollm, smollm_fp32, "keep")
    assert run_story(smollm, smollm_fp32, "swap") == kept
    assert run_story(smollm, smollm_fp32, "discard") == kept
