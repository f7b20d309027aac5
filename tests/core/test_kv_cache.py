"""Block pool and KV manager: allocation, LRU prefix cache, swap, and integrity under
randomized operation sequences (hypothesis)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astraea.core.block_pool import BlockPool, OutOfBlocksError
from astraea.core.kv_cache import KVCacheManager


def test_pool_allocate_free_and_integrity():
    pool = BlockPool(8)
    a = pool.allocate(3, "a")
    b = pool.allocate(5, "b")
    assert pool.num_free == 0 and sorted(a + b) == list(range(8))
    pool.check_integrity({"a": a, "b": b})
    with pytest.raises(OutOfBlocksError):
        pool.allocate(1, "c")
    pool.free(a)
    with pytest.raises(ValueError, match="freed twice"):
        pool.free(a[:1])
    pool.check_integrity({"b": b})


def test_pool_integrity_catches_a_leak():
    pool = BlockPool(4)
    pool.allocate(2, "a")
    with pytest.raises(AssertionError, match="leak"):
        pool.check_integrity({"a": []})


def test_cache_keeps_full_blocks_and_evicts_lru_tail_first():
    kv = KVCacheManager(num_device_blocks=10, num_host_blocks=0, block_size=4)
    kv.ensure_tokens("old", 14)  # 4 blocks, last one partial
    kv.ensure_tokens("new", 8)  # 2 blocks
    assert kv.cache("old", 14) == 12  # partial block freed, 3 full blocks cached
    assert kv.cache("new", 8) == 8
    assert kv.num_free_device_blocks == 10 and kv.num_owned_device_blocks == 0
    kv.allocate("x", 6)  # 5 free, so one cached block is evicted: the oldest job's tail
    assert kv.cached_tokens("old") == 8 and kv.cached_tokens("new") == 8
    assert kv.claim_cached("old") == 8
    assert kv.num_blocks("old") == 2
    kv.check_integrity()


def test_swap_out_and_in_round_trip():
    kv = KVCacheManager(num_device_blocks=4, num_host_blocks=4, block_size=4)
    kv.ensure_tokens("a", 10)
    assert kv.can_swap_out("a")
    out = kv.swap_out("a", 10)
    assert len(out.src) == len(out.dst) == 3 and kv.host_tokens("a") == 10
    assert kv.num_blocks("a") == 0 and kv.host.num_free == 1
    back = kv.swap_in("a")
    assert back.src == out.dst and kv.num_blocks("a") == 3 and kv.host.num_free == 4
    kv.check_integrity()


OPS = st.lists(
    st.tuples(
        st.sampled_from(["grow", "cache", "claim", "swap_out", "swap_in", "trim", "free"]),
        st.integers(0, 5),  # job
        st.integers(0, 60),  # tokens
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_integrity_holds_after_every_operation(ops):
    kv = KVCacheManager(num_device_blocks=16, num_host_blocks=8, block_size=4)
    for op, j, tokens in ops:
        job = f"j{j}"
        if op == "grow" and not kv.cached_tokens(job) and not kv.host_tokens(job):
            need = kv.blocks_needed(job, tokens)
            if kv.can_allocate(need):
                kv.ensure_tokens(job, tokens)
                assert kv.num_blocks(job) * 4 >= tokens
        elif op == "cache" and not kv.host_tokens(job):
            kv.cache(job, tokens)
        elif op == "claim" and not kv.num_blocks(job):
            kv.claim_cached(job)
        elif op == "swap_out" and kv.can_swap_out(job):
            kv.swap_out(job, tokens)
        elif (
            op == "swap_in"
            and kv.host_blocks(job)
            and not kv.num_blocks(job)
            and not kv.cached_tokens(job)
            and kv.can_allocate(kv.host_blocks(job))
        ):
            kv.swap_in(job)
        elif op == "trim":
            kv.trim(job, tokens)
        elif op == "free":
            kv.free(job)
        kv.check_integrity()
        assert kv.num_free_device_blocks + kv.num_owned_device_blocks == 16
