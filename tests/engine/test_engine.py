"""The engine loop: sampling options, ``generate`` / ``stream``, job identity across calls.

Loop mechanics run on the tiny random model (fast); parity, stop conditions and KV reuse on
SmolLM2 in float32 (slow). Every engine checks the scheduler's integrity after each step."""

import asyncio

import pytest

torch = pytest.importorskip("torch")

from astraea.core.job import JobStatus, KVLocation  # noqa: E402
from astraea.core.plan import ScheduledSeq  # noqa: E402
from astraea.core.policy import KVAction, Policy  # noqa: E402
from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.engine import Engine  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.runner import ModelRunner, split_by_cost  # noqa: E402
from astraea.engine.sampling import SamplingParams, sample  # noqa: E402
from tests.engine.driver import Driver  # noqa: E402
from tests.engine.test_runner import TINY, random_tensors  # noqa: E402

PROMPTS = [[3, 1, 4, 1, 5], [9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2], [8], [4, 6, 2, 6, 4, 3, 3]]


@pytest.fixture(scope="module")
def tiny_model():
    return LlamaModel.from_tensors(TINY, random_tensors(TINY), torch.float32)


class ToolAction(Policy):
    """vLLM ordering, but a fixed KV action at every tool call."""

    name = "test-tool-action"

    def __init__(self, action: KVAction) -> None:
        self.action = action

    def on_tool_call(self, job, kv):
        return self.action


def tiny_engine(model, policy="astraea", host_blocks=0, workers=1, **overrides) -> Engine:
    config = EngineConfig(
        dtype="float32",
        block_size=4,
        num_gpu_blocks=40,
        num_cpu_blocks=host_blocks,
        num_threads=1,
        num_workers=workers,
    )
    runner = ModelRunner(model, config)
    return Engine(runner, policy=policy, scheduler_overrides=overrides, check_integrity=True)


def greedy_reference(runner: ModelRunner, prompt: list[int], n: int) -> list[int]:
    """Greedy tokens straight from the runner (no scheduler), one job alone."""
    d = Driver(runner)
    d.add("a", prompt)
    for _ in range(n):
        d.run(d.plan(d.seq("a")))
    return d.tokens["a"][len(prompt) :]


# ---- sampling ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_tokens=0),
        dict(max_tokens=2.5),
        dict(temperature=-1.0),
        dict(temperature=float("nan")),
        dict(top_p=0.0),
        dict(top_p=1.5),
        dict(min_tokens=5, max_tokens=4),
        dict(min_tokens=-1),
        dict(seed="x"),
        dict(stop=("",)),
        dict(ignore_eos="yes"),
    ],
)
def test_bad_sampling_params_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_sampler_greedy_top_p_and_seeds():
    assert SamplingParams(stop="x").stop == ("x",)
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(1))
    greedy = logits.argmax(-1).tolist()
    hot = SamplingParams(temperature=1.0, seed=7)
    assert sample(logits, [SamplingParams()] * 3, [None] * 3) == greedy
    tiny_p = SamplingParams(temperature=1.0, top_p=1e-6, seed=1)
    assert sample(logits, [tiny_p] * 3, [tiny_p.generator() for _ in range(3)]) == greedy
    draws = [sample(logits[:1], [hot], [hot.generator()])[0] for _ in range(2)]
    assert draws[0] == draws[1]  # a seeded call is reproducible
    spread = {sample(logits[:1], [hot], [None])[0] for _ in range(50)}
    assert len(spread) > 1  # temperature 1 really samples


# ---- the loop on the tiny model --------------------------------------------------------------
def test_batched_generate_equals_one_at_a_time_and_the_runner(tiny_model):
    params = SamplingParams(max_tokens=6)
    engine = tiny_engine(tiny_model, max_num_batched_tokens=8)  # prompts split into chunks
    together = engine.generate(PROMPTS, params)
    alone = [tiny_engine(tiny_model).generate(p, params)[0] for p in PROMPTS]
    assert [o.token_ids for o in together] == [o.token_ids for o in alone]
    runner = tiny_engine(tiny_model).runner
    for prompt, out in zip(PROMPTS, together, strict=True):
        assert out.token_ids == greedy_reference(runner, prompt, 6)
        assert out.finish_reason == "length" and out.text == ""
    assert engine.scheduler.jobs == {} and engine.num_finished_jobs == 4
    assert engine.scheduler.kv.device.num_free == 40


def test_forward_split_across_worker_threads_gives_the_same_tokens(tiny_model):
    params = SamplingParams(max_tokens=6)
    split = tiny_engine(tiny_model, workers=3, max_num_batched_tokens=8)
    whole = tiny_engine(tiny_model, max_num_batched_tokens=8)
    assert [o.token_ids for o in split.generate(PROMPTS, params)] == [
        o.token_ids for o in whole.generate(PROMPTS, params)
    ]
    assert split.scheduler.kv.device.num_free == 40


def test_split_by_cost_keeps_whole_sequences_in_balanced_groups():
    seqs = [ScheduledSeq(f"j{i}", 10 * i, n, True, []) for i, n in enumerate([1, 1, 9, 1, 30, 2])]
    groups = split_by_cost(seqs, 2)
    assert sorted(s.job_id for g in groups for s in g) == sorted(s.job_id for s in seqs)
    assert [s.job_id for s in groups[0]] == sorted(s.job_id for s in groups[0])  # plan order
    loads = [sum(s.num_new_tokens for s in g) for g in groups]
    assert max(loads) - min(loads) <= 25  # the 30-token chunk alone against the rest
    assert split_by_cost(seqs[:1], 4) == [seqs[:1]]
    assert len(split_by_cost(seqs[:2], 4)) == 2  # no empty groups


def test_multi_step_plans_and_seeded_sampling_ignore_the_batch(tiny_model):
    hot = SamplingParams(max_tokens=7, temperature=0.8, top_p=0.9, seed=3)
    engine = tiny_engine(tiny_model, max_steps_per_plan=4)
    both = engine.generate(PROMPTS[:2], [hot, SamplingParams(max_tokens=3)])
    alone = tiny_engine(tiny_model).generate(PROMPTS[0], hot)[0]
    assert both[0].token_ids == alone.token_ids
    assert engine.num_steps > engine.num_plans  # some plans ran several decode steps


def test_two_calls_reuse_preserved_kv_and_finish_job_frees_it(tiny_model):
    engine = tiny_engine(tiny_model)
    params = SamplingParams(max_tokens=5)
    first = engine.generate([PROMPTS[1]], params, job_ids=["job"])[0]
    job = engine.scheduler.jobs["job"]
    assert job.status is JobStatus.TOOL_WAIT and job.kv_location is KVLocation.DEVICE
    tool_result = [7, 7, 1]
    second = engine.generate([tool_result], params, job_ids=["job"])[0]
    assert engine.scheduler.counters.recomputed_tokens == 0
    full = PROMPTS[1] + first.token_ids + tool_result
    fresh = tiny_engine(tiny_model).generate(full, params)[0]
    assert second.token_ids == fresh.token_ids
    other = engine.submit("other", [1], params, last=True)
    with pytest.raises(ValueError, match="in progress"):
        engine.submit("other", [2], params)
    engine.run_until_done([other])
    engine.finish_job("job")
    assert "job" not in engine.scheduler.jobs
    with pytest.raises(KeyError):
        engine.finish_job("job")


def test_finish_job_frees_every_block(tiny_model):
    engine = tiny_engine(tiny_model)
    engine.generate(PROMPTS, SamplingParams(max_tokens=4), job_ids=["a", "b", "c", "d"])
    kv = engine.scheduler.kv
    assert kv.device.num_free < 40
    for job_id in "abcd":
        engine.finish_job(job_id)
    engine.check_integrity()
    assert kv.device.num_free == 40 and kv.num_cached_blocks == 0
    assert engine.scheduler.num_unfinished == 0


def test_cache_policy_continuation_matches_a_fresh_call(tiny_model):
    engine = tiny_engine(tiny_model, policy="vllm-fcfs")
    params = SamplingParams(max_tokens=4)
    first = engine.generate([PROMPTS[1]], params, job_ids=["j"])[0]
    assert engine.scheduler.jobs["j"].kv_location is KVLocation.CACHED
    second = engine.generate([[5, 5]], params, job_ids=["j"], last=True)[0]
    fresh = tiny_engine(tiny_model).generate(PROMPTS[1] + first.token_ids + [5, 5], params)
    assert second.token_ids == fresh[0].token_ids
    assert engine.scheduler.jobs == {} and engine.scheduler.kv.device.num_free == 40


@pytest.mark.parametrize("action", [KVAction.SWAP, KVAction.DISCARD])
def test_swapped_or_discarded_context_continues_like_a_fresh_call(tiny_model, action):
    engine = tiny_engine(tiny_model, ToolAction(action), host_blocks=16)
    params = SamplingParams(max_tokens=4)
    first = engine.generate([PROMPTS[1]], params, job_ids=["j"])[0]
    expected = KVLocation.HOST if action is KVAction.SWAP else KVLocation.NONE
    assert engine.scheduler.jobs["j"].kv_location is expected
    engine.generate([[1] * 30], params)  # another job runs while j waits
    second = engine.generate([[5, 5]], params, job_ids=["j"], last=True)[0]
    fresh = tiny_engine(tiny_model).generate(PROMPTS[1] + first.token_ids + [5, 5], params)
    assert second.token_ids == fresh[0].token_ids
    recomputed = engine.scheduler.counters.recomputed_tokens
    assert (recomputed == 0) == (action is KVAction.SWAP)
    engine.generate([PROMPTS[0]], params, job_ids=["k"])  # its swap-out is still pending
    engine.finish_job("k")
    engine.check_integrity()
    kv = engine.scheduler.kv
    assert kv.device.num_free == 40 and kv.host.num_free == 16


def test_stream_yields_tokens_as_generate_does(tiny_model):
    engine = tiny_engine(tiny_model)
    params = SamplingParams(max_tokens=5)

    async def collect(job_id, prompt):
        return [t async for t in engine.stream(job_id, prompt, params, last=True)]

    async def both():
        return await asyncio.gather(collect("x", PROMPTS[0]), collect("y", PROMPTS[3]))

    streamed = asyncio.run(both())
    expected = tiny_engine(tiny_model).generate([PROMPTS[0], PROMPTS[3]], params)
    assert streamed == [o.token_ids for o in expected]


def test_oversized_calls_are_refused(tiny_model):
    engine = tiny_engine(tiny_model)
    with pytest.raises(ValueError, match="exceeds the model"):
        engine.submit("a", [1] * 60, SamplingParams(max_tokens=10))
    with pytest.raises(ValueError, match="tokenizer"):
        engine.submit("a", [1], SamplingParams(stop="x"))
    with pytest.raises(ValueError, match="tokenizer"):
        engine.submit("a", "text")
    with pytest.raises(ValueError, match="at least one"):
        engine.submit("a", [])
    assert engine.scheduler.jobs == {}


# ---- SmolLM2 ---------------------------------------------------------------------------------
@pytest.fixture
def smol_engine(smollm, smollm_fp32):
    config = EngineConfig(dtype="float32", block_size=8, num_gpu_blocks=96, num_threads=1)
    runner = ModelRunner(smollm_fp32, config)
    return Engine(runner, tokenizer=smollm.tokenizer, check_integrity=True)


def chat(tokenizer, text: str) -> list[int]:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}])


@pytest.mark.slow
def test_smollm_greedy_stop_conditions(smollm, smol_engine):
    tok = smollm.tokenizer
    prompt = chat(tok, "What is the capital of France?")
    out = smol_engine.generate(prompt, SamplingParams(max_tokens=12))[0]
    assert out.token_ids == greedy_reference(smol_engine.runner, prompt, len(out.token_ids))
    assert "Paris" in out.text
    if out.finish_reason == "stop":  # ended on EOS: the id is kept, the text leaves it out
        assert tok.is_eos(out.token_ids[-1]) and tok.eos_token not in out.text
    cut = smol_engine.generate(prompt, SamplingParams(max_tokens=12, stop=["Paris"]))[0]
    assert cut.finish_reason == "stop" and out.text.startswith(cut.text)
    assert "Paris" not in cut.text and cut.token_ids == out.token_ids[: len(cut.token_ids)]
    short = smol_engine.generate(prompt, SamplingParams(max_tokens=3))[0]
    assert short.finish_reason == "length" and short.token_ids == out.token_ids[:3]


@pytest.mark.slow
def test_smollm_min_tokens_and_ignore_eos(smollm, smol_engine):
    tok = smollm.tokenizer
    prompt = chat(tok, "Is the sky blue? Answer yes or no.")
    natural = smol_engine.generate(prompt, SamplingParams(max_tokens=6))[0]
    assert natural.finish_reason == "stop", "the answer must end on EOS within 6 tokens"
    n = len(natural.token_ids)
    forced = smol_engine.generate(prompt, SamplingParams(max_tokens=n + 2, ignore_eos=True))[0]
    assert forced.finish_reason == "length" and forced.token_ids[:n] == natural.token_ids
    longer = smol_engine.generate(prompt, SamplingParams(max_tokens=n + 4, min_tokens=n + 1))[0]
    assert len(longer.token_ids) >= n + 1
    assert not any(tok.is_eos(t) for t in longer.token_ids[: n + 1])


@pytest.mark.slow
def test_smollm_tool_call_continues_on_kept_kv(smollm, smol_engine):
    tok = smollm.tokenizer
    prompt = chat(tok, "What is 2 + 2? Use a tool.")
    params = SamplingParams(max_tokens=4)
    first = smol_engine.generate([prompt, chat(tok, "Hi")], params, job_ids=["A", "B"])
    result = tok.encode("<|im_start|>tool\n4<|im_end|>\n<|im_start|>assistant\n")
    second = smol_engine.generate([result], SamplingParams(max_tokens=6), job_ids=["A"])[0]
    assert smol_engine.scheduler.counters.recomputed_tokens == 0
    full = prompt + first[0].token_ids + result
    fresh = smol_engine.generate(full, SamplingParams(max_tokens=6))[0]
    assert second.token_ids == fresh.token_ids
    for job_id in ("A", "B"):
        smol_engine.finish_job(job_id)
    assert smol_engine.scheduler.kv.num_free_device_blocks == 96


@pytest.mark.slow
def test_smollm_batch_of_four_equals_one_at_a_time(smollm, smollm_fp32):
    tok = smollm.tokenizer
    texts = ["Hi", "What is the capital of France?", "Name a large animal.", "Count to five."]
    prompts = [chat(tok, t) for t in texts]
    params = SamplingParams(max_tokens=6, ignore_eos=True)

    def engine(**overrides):
        config = EngineConfig(dtype="float32", block_size=8, num_gpu_blocks=96, num_threads=1)
        runner = ModelRunner(smollm_fp32, config)
        return Engine(runner, scheduler_overrides=overrides, check_integrity=True)

    together = engine(max_num_batched_tokens=64).generate(prompts, params)  # chunked prefill
    alone = engine()
    for prompt, out in zip(prompts, together, strict=True):
        assert out.token_ids == alone.generate(prompt, params)[0].token_ids
