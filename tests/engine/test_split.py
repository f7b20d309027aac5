"""A lone prompt's prefill split by rows over one-thread workers (split.py), and the blocked
causal attention it and the one-team path share: same logits as one pass, and decoding from
the KV the workers wrote matches transformers."""

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch.nn.functional as F  # noqa: E402

from astraea.engine.attention import causal_rows  # noqa: E402
from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from astraea.engine.split import split_rows  # noqa: E402
from astraea.engine.weights import hf_model_config  # noqa: E402
from tests.engine.driver import Driver  # noqa: E402
from tests.engine.reference import hf_last_logits  # noqa: E402
from tests.engine.test_tiny_model import prompt, tiny_hf  # noqa: E402, F401

TOL = 1e-4


def test_split_rows_balances_causal_cost():
    assert split_rows(512, 1) == [0, 512]
    first, mid, last = split_rows(512, 2)
    assert (first, last) == (0, 512) and 256 < mid < 300  # later rows attend to more keys
    assert split_rows(3, 4) == [0, 1, 2, 3, 3]  # more parts than rows: empty tails
    bounds = split_rows(400, 3)
    assert bounds == sorted(bounds) and len(bounds) == 4


@pytest.mark.parametrize("start,end", [(0, 300), (0, 100), (130, 300), (256, 257)])
def test_causal_rows_equals_causal_sdpa(start, end):
    torch.manual_seed(0)
    t, heads, kv_heads, d = 300, 6, 2, 16
    q = torch.randn(1, heads, t, d)
    ctx = torch.randn(1, 2 * kv_heads, t, d)
    ref = F.scaled_dot_product_attention(
        q, ctx[:, :kv_heads], ctx[:, kv_heads:], is_causal=True, enable_gqa=True
    )
    tril = torch.ones(t, t, dtype=torch.bool).tril_()
    got = causal_rows(q, ctx, kv_heads, tril, start, end)
    want = ref[0, :, start:end].transpose(0, 1).reshape(end - start, heads * d)
    assert (got - want).abs().max().item() < 1e-5


def runner(hf, threads: int, split: str) -> ModelRunner:
    config = hf_model_config(hf.config.to_dict())
    model = LlamaModel.from_tensors(config, hf.state_dict(), torch.float32)
    engine = EngineConfig(dtype="float32", block_size=4, num_gpu_blocks=80, num_threads=threads)
    engine = dataclasses.replace(engine, adaptive_threads=False)
    r = ModelRunner(model, engine)
    r.split_prefill, r.split_min_rows = split, 8
    return r


@pytest.mark.parametrize("threads", [2, 3])
def test_split_prefill_matches_one_pass_and_transformers(tiny_hf, threads):  # noqa: F811
    tokens = prompt(7, 200)  # two causal blocks of 128 rows, split over the workers
    logits = {}
    for split in ("never", "always"):
        d = Driver(runner(tiny_hf, threads, split))
        d.add("a", tokens)
        d.add("b", prompt(8, 5))
        out = d.logits(d.plan(d.seq("a")))
        assert d.runner._row_split is None if split == "never" else d.runner._row_split
        logits[split] = out["a"]
        assert (out["a"] - hf_last_logits(tiny_hf, tokens)).abs().max().item() < TOL
        d.tokens["a"].append(int(out["a"].argmax()))
        for _ in range(3):  # decodes read the K/V the workers wrote, beside another prompt
            step = d.logits(d.plan(d.seq("a"), d.seq("b")))
            for job, row in step.items():
                ref = hf_last_logits(tiny_hf, d.tokens[job])
                assert (row - ref).abs().max().item() < TOL, job
                d.tokens[job].append(int(row.argmax()))
    assert (logits["never"] - logits["always"]).abs().max().item() < 1e-5


def test_split_only_for_a_lone_first_chunk(tiny_hf):  # noqa: F811
    r = runner(tiny_hf, 2, "always")
    d = Driver(r)
    d.add("a", prompt(1, 20))
    d.add("b", prompt(2, 20))
    d.logits(d.plan(d.seq("a"), d.seq("b")))  # two prompts: one pass, no split
    assert r._row_split is None
    r.split_prefill = "contended"  # the team is not shrunk (adaptive off): no split
    d.add("c", prompt(3, 20))
    d.logits(d.plan(d.seq("c")))
    assert r._row_split is None


def test_shared_machine_splits_a_step_by_sequence_over_workers(tiny_hf, monkeypatch):  # noqa: F811
    from astraea.engine import runner as runner_mod
    from astraea.engine.threads import Layout

    monkeypatch.setattr(runner_mod, "WORKER_MIN_ROWS", 2)  # the decodes split too
    r = runner(tiny_hf, 2, "never")
    r.threads.current = Layout(1, 2)  # what the governor picks while others want the CPU
    d = Driver(r)
    d.add("a", prompt(4, 30))
    d.add("b", prompt(5, 9))
    d.add("c", prompt(6, 17))
    for _ in range(4):  # prefill, then decodes, each step on two one-thread workers
        step = d.logits(d.plan(d.seq("a"), d.seq("b"), d.seq("c")))
        for job, row in step.items():
            ref = hf_last_logits(tiny_hf, d.tokens[job])
            assert (row - ref).abs().max().item() < TOL, job
            d.tokens[job].append(int(row.argmax()))
    assert r._workers is not None
