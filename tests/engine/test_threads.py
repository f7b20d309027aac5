"""Thread team sizing: fewer threads while other processes keep cores busy, set on the
thread that computes; fused weights are views, not copies; the KV pool starts as zeros."""

import threading

import pytest

torch = pytest.importorskip("torch")

from astraea.engine import threads  # noqa: E402
from astraea.engine.kv_pool import lazy_zeros  # noqa: E402
from astraea.engine.model import fused  # noqa: E402
from astraea.engine.threads import ThreadGovernor, threads_for  # noqa: E402


@pytest.mark.parametrize(
    ("others", "expected"),
    [(0.0, 2), (0.3, 2), (0.67, 1), (1.0, 1), (2.5, 1)],  # 2 cores: a spinning neighbour
)
def test_team_shrinks_when_other_processes_keep_a_core_busy(others, expected):
    assert threads_for(2, others, 2) == expected


def test_team_never_exceeds_the_configured_count():
    assert threads_for(8, 0.0, 3) == 3
    assert threads_for(8, 6.2, 3) == 2


def test_governor_reads_the_machine_and_sets_the_count_on_the_calling_thread(monkeypatch):
    # The machine: busy for 1 CPU second during 1 s of wall time, none of it ours.
    busy, clock = [0.0, 1.0], [0.0, 1.0]
    monkeypatch.setattr(threads, "machine_busy_seconds", lambda: busy.pop(0) if busy else 1.0)
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock.pop(0) if clock else 1.0)
    monkeypatch.setattr(threads.time, "process_time", lambda: 0.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    gov = ThreadGovernor(2, adaptive=True, interval=0.5)
    seen: list[int] = []

    def on_other_thread() -> None:
        torch.set_num_threads(2)
        gov.apply()
        seen.append(torch.get_num_threads())

    t = threading.Thread(target=on_other_thread)
    t.start()
    t.join()
    assert gov.others_busy == pytest.approx(1.0)
    assert seen == [1]


def test_fixed_governor_applies_its_count():
    gov = ThreadGovernor(1, adaptive=False)
    torch.set_num_threads(2)
    assert gov.apply() == 1 and torch.get_num_threads() == 1


def test_fused_weights_are_views_when_adjacent_and_copies_otherwise():
    base = torch.arange(24.0).view(6, 4)
    view = fused([base[:2], base[2:5], base[5:]])
    assert view.data_ptr() == base.data_ptr() and torch.equal(view, base)
    apart = fused([base[:2], base[3:]])
    assert apart.data_ptr() != base.data_ptr() and torch.equal(
        apart, torch.cat([base[:2], base[3:]])
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_lazy_pool_is_zeros_of_the_dtype(dtype):
    t = lazy_zeros((2, 3, 5), dtype)
    assert t.dtype == dtype and t.shape == (2, 3, 5) and not t.any()
    t[1, 2, 4] = 1.5
    assert t.sum().item() == 1.5
