"""The replay driver on a tiny random model: every job completes with its calls and forced
token counts, tool waits and arrivals are honoured, and no KV block is left in use."""

import pytest

torch = pytest.importorskip("torch")

from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.engine import Engine  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.replay import agent_trace, replay  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from tests.engine.test_runner import TINY, random_tensors  # noqa: E402

SMALL = dict(
    prompt_tokens=(4, 12), tool_result_tokens=(2, 6), output_tokens=(2, 6)
)  # contexts stay under TINY's 64 positions


@pytest.fixture(scope="module")
def tiny_model():
    return LlamaModel.from_tensors(TINY, random_tensors(TINY), torch.float32)


def tiny_engine(model, policy: str, clock=None, host_blocks: int = 0) -> Engine:
    config = EngineConfig(
        dtype="float32", block_size=4, num_gpu_blocks=48, num_cpu_blocks=host_blocks
    )
    kwargs = {"clock": clock} if clock else {}
    return Engine(ModelRunner(model, config), policy=policy, check_integrity=True, **kwargs)


class FakeClock:
    """Time moves only when the driver sleeps: steps take no time, so a job's JCT is
    exactly the sum of its tool latencies."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def test_agent_trace_is_seeded_and_within_its_ranges():
    specs = agent_trace(20, 2.0, seed=3)
    assert specs == agent_trace(20, 2.0, seed=3) != agent_trace(20, 2.0, seed=4)
    arrivals = [s.arrival for s in specs]
    assert arrivals == sorted(arrivals) and arrivals[0] > 0
    for s in specs:
        assert 2 <= len(s.segments) <= 3 and 50 <= s.segments[0].input_tokens <= 400
        assert all(16 <= seg.output_tokens <= 64 for seg in s.segments)
        assert all(16 <= seg.input_tokens <= 96 for seg in s.segments[1:])
        assert all(0.5 <= seg.tool.latency <= 3.0 for seg in s.segments[:-1])


@pytest.mark.parametrize("policy", ["astraea", "vllm-fcfs"])
def test_replay_on_a_fake_clock_times_only_the_tool_waits(tiny_model, policy):
    clock = FakeClock()
    engine = tiny_engine(tiny_model, policy, clock)
    specs = agent_trace(10, 4.0, seed=1, **SMALL)
    done = []
    result = replay(engine, specs, sleep=clock.sleep, on_job_finished=done.append)
    assert len(done) == len(specs) == len(result.jobs)
    by_id = {j.job_id: j for j in result.jobs}
    for spec in specs:
        job = by_id[spec.job_id]
        assert job.output_tokens == [seg.output_tokens for seg in spec.segments]
        tools = sum(seg.tool.latency for seg in spec.segments[:-1])
        assert job.jct == pytest.approx(tools, abs=1e-9)
        assert job.finish == pytest.approx(spec.arrival + tools, abs=1e-9)
    assert result.makespan == pytest.approx(max(j.finish for j in result.jobs) - specs[0].arrival)
    assert engine.scheduler.jobs == {} and engine.scheduler.kv.device.num_used == 0


def test_replay_on_the_wall_clock_frees_every_block(tiny_model):
    engine = tiny_engine(tiny_model, "astraea", host_blocks=16)
    specs = agent_trace(8, 50.0, seed=2, tool_latency=(0.01, 0.05), **SMALL)
    result = replay(engine, specs)
    for spec, job in zip(specs, result.jobs, strict=True):
        assert job.output_tokens == [seg.output_tokens for seg in spec.segments]
        assert job.jct >= sum(seg.tool.latency for seg in spec.segments[:-1])
    assert result.num_plans == engine.num_plans > 0
    assert result.wall_seconds >= result.makespan > 0
    kv = engine.scheduler.kv
    assert kv.device.num_used == 0 and kv.host.num_used == 0 and engine.scheduler.jobs == {}


def test_replay_refuses_an_empty_trace(tiny_model):
    with pytest.raises(ValueError, match="no jobs"):
        replay(tiny_engine(tiny_model, "astraea"), [])
