"""``Engine.abort``: a call dropped mid-flight frees every block at once, others go on."""

from astraea.core.job import JobStatus
from astraea.engine.sampling import SamplingParams
from tests.server.conftest import tiny_engine


def test_abort_running_waiting_and_idle_jobs(tiny_model, tokenizer):
    engine = tiny_engine(tiny_model, tokenizer, policy="vllm-fcfs")
    params = SamplingParams(max_tokens=20, ignore_eos=True)
    keep = engine.submit("keep", list(range(10, 40)), params)
    gone = engine.submit("gone", list(range(50, 90)), params)
    engine.step()
    engine.step()
    assert engine.scheduler.jobs["gone"].status is JobStatus.RUNNING
    dropped = engine.abort("gone")
    assert dropped is gone and not gone.finished
    assert "gone" not in engine.scheduler.jobs
    engine.check_integrity()
    engine.run_until_done([keep])  # the other call finishes as if nothing happened
    engine.abort("keep")  # now waiting on a tool: its preserved KV goes too
    queued = engine.submit("queued", [1, 2, 3], params)
    assert engine.scheduler.jobs["queued"].status is JobStatus.WAITING
    assert engine.abort("queued") is queued
    engine.check_integrity()
    assert engine.scheduler.jobs == {} and engine.scheduler.num_unfinished == 0
    assert engine.scheduler.kv.num_free_device_blocks == engine.scheduler.config.num_device_blocks
    assert engine.num_finished_jobs == 3
