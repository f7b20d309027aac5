"""The physical tiers follow the scheduler's logical block copies exactly (bit for bit)."""

import pytest

torch = pytest.importorskip("torch")

from astraea.core.kv_cache import KVCacheManager  # noqa: E402
from astraea.engine.config import EngineConfig, ModelConfig  # noqa: E402
from astraea.engine.kv_pool import KVPool  # noqa: E402

MODEL = ModelConfig(
    vocab_size=16,
    hidden_size=8,
    intermediate_size=8,
    num_layers=2,
    num_heads=2,
    num_kv_heads=1,
    head_dim=4,
)
BS = 4


def make_pool(device_blocks: int = 6, host_blocks: int = 6) -> tuple[KVPool, KVCacheManager]:
    engine = EngineConfig(block_size=BS, num_gpu_blocks=device_blocks, num_cpu_blocks=host_blocks)
    return KVPool(MODEL, engine, torch.float32), KVCacheManager(device_blocks, host_blocks, BS)


def fill(pool: KVPool, blocks: list[int], value: float) -> None:
    for i, b in enumerate(blocks):
        pool.device_blocks[:, :, b] = value + i


def content(pool: KVPool, blocks: list[int]) -> list[float]:
    return [float(pool.device_blocks[0, 0, b, 0, 0]) for b in blocks]


def test_pool_shapes_follow_the_configs():
    pool, _ = make_pool(6, 3)
    assert pool.device_blocks.shape == (2, 2, 6, BS, 4)
    assert pool.host_blocks.shape == (2, 2, 3, BS, 4)
    assert pool.device_cache.shape == (2, 2, 6 * BS, 4)
    assert pool.device_cache.data_ptr() == pool.device_blocks.data_ptr()


def test_swap_out_then_in_restores_the_data_in_new_blocks():
    pool, kv = make_pool()
    kv.ensure_tokens("a", 7)
    before = kv.table("a")
    fill(pool, before, 10.0)
    snapshot = pool.device_blocks[:, :, before].clone()
    pool.apply([kv.swap_out("a", 7)])
    kv.ensure_tokens("b", 24)  # takes every device block, a's old ones included
    fill(pool, kv.table("b"), -1.0)
    kv.free("b")
    kv.ensure_tokens("c", 5)  # shift the free list so a comes back elsewhere
    pool.apply([kv.swap_in("a")])
    after = kv.table("a")
    assert after != before
    assert torch.equal(pool.device_blocks[:, :, after], snapshot)
    kv.check_integrity()


def test_swap_in_reads_host_blocks_before_a_swap_out_reuses_them():
    pool, kv = make_pool(device_blocks=6, host_blocks=2)
    kv.ensure_tokens("a", 8)
    fill(pool, kv.table("a"), 1.0)
    pool.apply([kv.swap_out("a", 8)])  # a on host blocks 0, 1
    kv.ensure_tokens("b", 8)
    fill(pool, kv.table("b"), 5.0)
    swap_in = kv.swap_in("a")  # frees host blocks 0, 1 ...
    swap_out = kv.swap_out("b", 8)  # ... which b's swap-out takes in the same plan
    assert set(swap_out.dst) == set(swap_in.src)
    pool.apply([swap_in, swap_out])  # in the order issued
    assert content(pool, kv.table("a")) == [1.0, 2.0]
    back_b = kv.swap_in("b")
    pool.apply([back_b, kv.swap_out("a", 8)])  # the same hazard the other way round
    assert content(pool, kv.table("b")) == [5.0, 6.0]


def test_a_job_swapped_out_and_back_in_one_plan_gets_its_own_data():
    pool, kv = make_pool()
    kv.ensure_tokens("a", 8)
    fill(pool, kv.table("a"), 3.0)
    out = kv.swap_out("a", 8)
    kv.ensure_tokens("x", 8)  # the freed device blocks go to another job first
    back = kv.swap_in("a")
    pool.apply([out, back])
    assert content(pool, kv.table("a")) == [3.0, 4.0]


def test_a_job_swapped_in_and_out_again_in_one_plan_keeps_its_data():
    pool, kv = make_pool(device_blocks=6, host_blocks=4)
    kv.ensure_tokens("a", 8)
    fill(pool, kv.table("a"), 3.0)
    pool.apply([kv.swap_out("a", 8)])
    kv.ensure_tokens("x", 8)
    fill(pool, kv.table("x"), 9.0)
    back = kv.swap_in("a")  # a prefetch ...
    again = kv.swap_out("a", 8)  # ... reclaimed later in the same plan
    pool.apply([back, again])
    assert content(pool, kv.table("x")) == [9.0, 10.0]
    pool.apply([kv.swap_in("a")])
    assert content(pool, kv.table("a")) == [3.0, 4.0]


def test_device_copy_blocks():
    pool, _ = make_pool()
    fill(pool, [0, 1], 7.0)
    pool.copy_blocks([0, 1], [4, 5])
    assert content(pool, [4, 5]) == [7.0, 8.0]
