"""Thread layout: one team while nothing else wants the CPU, one-thread workers otherwise,
set on the thread that computes; fused weights are views, not copies; the KV pool starts as
zeros."""

import threading

import pytest

torch = pytest.importorskip("torch")

from astraea.engine import threads  # noqa: E402
from astraea.engine.kv_pool import lazy_zeros  # noqa: E402
from astraea.engine.model import fused  # noqa: E402
from astraea.engine.threads import Layout, ThreadGovernor, layout_for  # noqa: E402


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        (0.0, Layout(2, 1)),
        (0.4, Layout(2, 1)),
        (0.5, Layout(1, 2)),
        (1.0, Layout(1, 2)),  # a spinning neighbour
        (5.0, Layout(1, 2)),  # oversubscription: workers too
    ],
)
def test_layout_is_one_team_only_while_nothing_else_wants_the_cpu(others, expected):
    assert layout_for(others, 2) == expected


def test_layout_never_exceeds_the_configured_count():
    assert layout_for(0.0, 3) == Layout(3, 1)
    assert layout_for(2.0, 3) == Layout(1, 3)
    assert layout_for(4.0, 1) == Layout(1, 1)


def test_others_runnable_leaves_out_this_process(monkeypatch, tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.00 2.00 1.00 5/300 1234\n")
    monkeypatch.setattr(threads, "_LOADAVG", loadavg)
    monkeypatch.setattr(threads, "own_running_threads", lambda: 2)
    assert threads.others_runnable() == 3
    monkeypatch.setattr(threads, "own_running_threads", lambda: 9)
    assert threads.others_runnable() == 0
    monkeypatch.setattr(threads, "_LOADAVG", tmp_path / "missing")
    assert threads.others_runnable() is None


def test_own_running_threads_counts_the_caller():
    assert threads.own_running_threads() >= 1  # the thread asking is running


class _Sampler:
    available = True

    def __init__(self, value: float) -> None:
        self.value = value

    def median(self) -> float:
        return self.value


def test_sampler_ignores_bursts_but_not_a_neighbour_that_spins():
    sampler = threads.LoadSampler(period=3600.0, window=36000.0)  # 10 counts, never sampled
    try:
        assert sampler.median() == 0.0
        sampler._counts.extend([0] * 8 + [11, 9])  # an idle neighbour waking its threads
        assert layout_for(sampler.median(), 2) == Layout(2, 1)
        sampler._counts.extend([1, 2, 1, 1, 1, 1, 1, 2])  # one that wants a core throughout
        assert layout_for(sampler.median(), 2) == Layout(1, 2)
    finally:
        sampler.close()


def test_governor_sets_the_layouts_team_on_the_calling_thread(monkeypatch):
    sampler = _Sampler(1.0)
    monkeypatch.setattr(threads, "shared_sampler", lambda: sampler)
    gov = ThreadGovernor(2, adaptive=True)
    assert gov.layout() == Layout(1, 2)
    seen: list[int] = []

    def on_other_thread() -> None:
        torch.set_num_threads(2)
        gov.apply()
        seen.append(torch.get_num_threads())

    t = threading.Thread(target=on_other_thread)
    t.start()
    t.join()
    assert seen == [1]
    sampler.value = 0.0
    assert gov.layout() == Layout(2, 1) and gov.apply() == 2


def test_fixed_governor_applies_its_count():
    gov = ThreadGovernor(1, adaptive=False)
    torch.set_num_threads(2)
    assert gov.layout() == Layout(1, 1)
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
