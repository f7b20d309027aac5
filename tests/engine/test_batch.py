"""From plan to tensors: slots, positions, row order, padding and masks."""

import pytest

torch = pytest.importorskip("torch")

from astraea.core.plan import ScheduledSeq  # noqa: E402
from astraea.engine.batch import build_batch  # noqa: E402

BS = 4


def test_rows_put_single_token_queries_first_and_map_slots_through_block_tables():
    tokens = {"p": list(range(10, 16)), "d": list(range(20, 27)), "c": list(range(30, 40))}
    seqs = [
        ScheduledSeq("p", 0, 6, True, [5, 2]),  # fresh prompt
        ScheduledSeq("d", 6, 1, True, [7, 1]),  # decode at position 6
        ScheduledSeq("c", 4, 5, False, [3, 0, 6]),  # chunk of positions 4..8, not sampling
    ]
    batch = build_batch(seqs, tokens, BS)
    assert batch.input_ids.tolist() == [26, 10, 11, 12, 13, 14, 15, 34, 35, 36, 37, 38]
    assert batch.positions.tolist() == [6, 0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8]
    slots = batch.meta.slot_mapping.tolist()
    assert slots[0] == 1 * BS + 2  # position 6 -> block table[1] = 1, offset 2
    assert slots[1:7] == [20, 21, 22, 23, 8, 9]
    assert slots[7:] == [0, 1, 2, 3, 24]
    assert batch.sample_jobs == ["d", "p"]
    assert batch.sample_rows.tolist() == [0, 6]
    fresh, cont = batch.meta.prefills
    assert fresh.context_slots is None and (fresh.start, fresh.num_tokens) == (1, 6)
    assert cont.context_slots.tolist() == [12, 13, 14, 15, 0, 1, 2, 3, 24]
    assert cont.mask.shape == (5, 9)
    assert cont.mask[0].tolist() == [True] * 5 + [False] * 4  # position 4 sees 0..4
    assert cont.mask[-1].all()


def test_decode_rows_come_longest_first_in_groups_padded_to_whole_blocks():
    tokens = {"a": list(range(3)), "b": list(range(9)), "c": list(range(8))}
    seqs = [
        ScheduledSeq("a", 2, 1, True, [4]),
        ScheduledSeq("b", 8, 1, True, [1, 2, 3]),
        ScheduledSeq("c", 7, 1, True, [5, 6]),
    ]
    batch = build_batch(seqs, tokens, BS)
    meta = batch.meta
    assert batch.sample_jobs == ["b", "c", "a"]
    assert batch.input_ids.tolist() == [8, 7, 2]
    # b (3 blocks) and c (2 blocks) share a group padded to 3 blocks (6 <= 1.25 * 5);
    # a (1 block) would pad the group to 9 blocks for 6 real ones: a group of its own.
    assert meta.num_decode == 3
    first, second = meta.decode_groups
    assert (first.start, first.num_seqs, first.span) == (0, 2, 12)
    slots = first.slots.view(2, 12)
    assert slots[0].tolist() == list(range(4, 16))
    assert slots[1, :8].tolist() == [20, 21, 22, 23, 24, 25, 26, 27]
    assert slots[1, 8:].tolist() == [0, 1, 2, 3]  # padding points at block 0
    assert first.mask.view(2, 12).sum(dim=1).tolist() == [9, 8]
    assert (second.start, second.num_seqs, second.span) == (2, 1, 4)
    assert second.slots.tolist() == [16, 17, 18, 19]
    assert second.mask.view(4).tolist() == [True, True, True, False]


def test_group_lengths_bounds_padding_and_the_number_of_groups():
    from astraea.engine.batch import group_lengths

    assert group_lengths([512] * 32, 16) == [32]  # equal contexts: one group, no padding
    lengths = [600, 590, 400, 390, 200, 100]
    sizes = group_lengths(lengths, 16)
    assert sizes == [4, 1, 1]  # 4 x 38 padded blocks for 125 real ones; 200 and 100 alone
    start = 0
    for size in sizes:
        blocks = [-(-n // 16) for n in lengths[start : start + size]]
        assert size * blocks[0] <= 1.25 * sum(blocks)
        start += size
    assert group_lengths(list(range(1000, 0, -37)), 16, max_groups=3).__len__() == 3


def test_later_step_of_a_multi_step_plan_moves_each_sequence_along():
    tokens = {"a": list(range(7))}
    seqs = [ScheduledSeq("a", 4, 1, True, [0, 1])]
    batch = build_batch(seqs, tokens, BS, step=2)
    assert batch.positions.tolist() == [6]
    assert batch.input_ids.tolist() == [6]
    assert batch.meta.slot_mapping.tolist() == [6]


@pytest.mark.parametrize(
    ("seqs", "tokens", "message"),
    [
        ([ScheduledSeq("a", 0, 5, True, [0])], {"a": list(range(5))}, "cannot hold"),
        ([ScheduledSeq("a", 0, 5, True, [0, 1])], {"a": list(range(3))}, "tokens known"),
        ([ScheduledSeq("a", 0, 5, True, [0, 1])], {}, "no token list"),
    ],
)
def test_inconsistent_plans_fail_loudly(seqs, tokens, message):
    with pytest.raises((ValueError, KeyError), match=message):
        build_batch(seqs, tokens, BS)


def test_only_a_pure_decode_plan_may_take_several_steps():
    seqs = [ScheduledSeq("a", 0, 3, True, [0])]
    with pytest.raises(ValueError, match="pure-decode"):
        build_batch(seqs, {"a": [1, 2, 3]}, BS, step=1)
