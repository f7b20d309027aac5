"""The logit processors and the sampler's new options, on hand-made logits (fast)."""

import math

import pytest

torch = pytest.importorskip("torch")

from astraea.engine.isolation import sample_isolated  # noqa: E402
from astraea.engine.logits import apply_penalties, bitmask_to_bool, process_row  # noqa: E402
from astraea.engine.sampling import Request, SamplingParams, sample  # noqa: E402

EOS = frozenset({9})


def req(params: SamplingParams, tokens=(), job="a") -> Request:
    r = Request(job, params, True, params.generator())
    r.token_ids.extend(tokens)
    return r


@pytest.mark.parametrize(
    "kwargs",
    [
        {"top_k": -2},
        {"min_p": 1.5},
        {"presence_penalty": 3.0},
        {"frequency_penalty": -2.5},
        {"repetition_penalty": 0.0},
        {"logit_bias": ((1, 200.0),)},
        {"logit_bias": ((-1, 1.0),)},
        {"logprobs": 21},
        {"grammar": object(), "ignore_eos": True},
    ],
)
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_top_k_minus_one_means_off():
    assert SamplingParams(top_k=-1).top_k == 0


def test_logit_bias_changes_the_greedy_choice():
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.5]])
    r = req(SamplingParams(logit_bias=((0, 5.0), (2, -100.0))))
    process_row(logits, 0, r)
    assert sample(logits, [r.params], [None]) == [0]


def test_penalties_follow_vllm_definitions():
    row = torch.tensor([2.0, -2.0, 1.0, 1.0])
    rep = SamplingParams(repetition_penalty=2.0, prompt_ids=(1,))
    apply_penalties(row, rep, [0])
    assert row.tolist() == [1.0, -4.0, 1.0, 1.0]  # positive halved, negative doubled
    row = torch.tensor([1.0, 1.0, 1.0, 1.0])
    apply_penalties(row, SamplingParams(frequency_penalty=0.5, presence_penalty=0.25), [2, 2, 3])
    assert row.tolist() == [1.0, 1.0, 1.0 - 1.0 - 0.25, 1.0 - 0.5 - 0.25]


def test_a_penalty_stops_greedy_repetition():
    logits = torch.tensor([[0.0, 3.0, 2.5]])
    r = req(SamplingParams(presence_penalty=1.0), tokens=[1])
    process_row(logits, 0, r)
    assert sample(logits, [r.params], [None]) == [2]


def test_top_k_and_min_p_restrict_the_draw():
    logits = torch.tensor([[5.0, 4.9, 0.0, -1.0]])
    for seed in range(20):
        k = SamplingParams(temperature=1.5, top_k=2, seed=seed)
        assert sample(logits, [k], [k.generator()])[0] in (0, 1)
        m = SamplingParams(temperature=1.5, min_p=0.5, seed=seed)
        assert sample(logits, [m], [m.generator()])[0] in (0, 1)


def test_logprobs_are_raw_and_list_the_top_tokens():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    r = req(SamplingParams(logprobs=2, logit_bias=((0, 100.0),)))
    [(_, token, _)] = sample_isolated([r], logits.clone(), EOS, None, {})
    assert token == 0  # the bias decided the draw ...
    expected = torch.log_softmax(torch.tensor([1.0, 3.0, 2.0, 0.0]), -1)
    [entry] = r.logprobs
    assert entry.token_id == 0 and math.isclose(entry.logprob, float(expected[0]), rel_tol=1e-6)
    assert [t for t, _ in entry.top] == [1, 2]  # ... the logprobs are the model's own
    assert r.finish("x").logprobs == [entry]


def test_bitmask_layout():
    mask = torch.tensor([0b101, -(2**31), 0], dtype=torch.int32)  # bit 31: the sign bit
    allowed = bitmask_to_bool(mask, 70)
    assert allowed.nonzero().flatten().tolist() == [0, 2, 63]


class OnlyEven:
    """A grammar allowing even token ids only, that records what it accepted."""

    def __init__(self, accepted):
        self.accepted = accepted

    def matcher(self):
        grammar = self

        class M:
            def mask(self, row):
                row[1::2] = -math.inf

            def accept(self, token):
                if token % 2:
                    raise ValueError("odd")
                grammar.accepted.append(token)

        return M()


class Nothing:
    def matcher(self):
        class M:
            def mask(self, row):
                row[:] = -math.inf

            def accept(self, token):
                raise AssertionError("never drawn")

        return M()


def test_a_grammar_masks_and_advances_and_a_broken_one_fails_alone():
    accepted = []
    logits = torch.tensor([[0.0, 5.0, 1.0, 0.0], [0.0, 5.0, 1.0, 0.0], [0.0, 5.0, 1.0, 0.0]])
    good = req(SamplingParams(grammar=OnlyEven(accepted)), job="good")
    free = req(SamplingParams(), job="free")
    bad = req(SamplingParams(grammar=Nothing()), job="bad")
    failed = {}
    out = sample_isolated([good, bad, free], logits, EOS, None, failed)
    assert [(r.job_id, t) for r, t, _ in out] == [("good", 2), ("free", 1)]
    assert accepted == [2] and set(failed) == {"bad"}


def test_a_tiny_repetition_penalty_does_not_overflow():
    """Found by the fuzz test: 5e-324 turned logits into inf and the draw into nan."""
    logits = torch.tensor([[1.0, 2.0, -1.0]])
    params = SamplingParams(temperature=1.0, repetition_penalty=5e-324, prompt_ids=(0, 1, 2))
    r = req(params)
    process_row(logits, 0, r)
    assert torch.isfinite(logits).all()
    assert sample(logits, [params], [torch.Generator().manual_seed(0)])[0] in (0, 1)
