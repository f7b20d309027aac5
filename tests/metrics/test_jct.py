"""JCT metrics and aggregates on hand-made jobs."""

import math

import pytest

from astraea.core import Job, JobStatus
from astraea.metrics import job_metrics, percentile, summarize_jobs
from tests.fakes import make_job


def finished(job_id, arrival, finish, calls, tool=2.0, solo=None):
    job = Job(spec=make_job(job_id, calls, tool_latency=tool, arrival=arrival))
    job.status, job.finish_time = JobStatus.FINISHED, finish
    job.num_generated_total = sum(out for _, out in calls)
    return job


def test_percentile_interpolates_like_numpy_linear():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile([0, 10], 90) == pytest.approx(9.0)
    assert math.isnan(percentile([], 50))


def test_job_metrics_take_tool_time_out_of_engine_time_and_divide_by_solo():
    job = finished("a", arrival=1.0, finish=11.0, calls=[(10, 5), (4, 5), (3, 2)], tool=2.0)
    (m,) = job_metrics([job], {"a": 5.0})
    assert m.jct == 10.0 and m.tool_time == 4.0 and m.engine_time == 6.0
    assert m.slowdown == 2.0 and m.generated_tokens == 12


def test_summary_aggregates():
    jobs = [finished(f"j{i}", arrival=i, finish=i + 1 + i, calls=[(5, 5)]) for i in range(10)]
    s = summarize_jobs(job_metrics(jobs))
    assert s["jobs"] == 10 and s["avg_jct"] == pytest.approx(5.5)
    assert s["p50_jct"] == pytest.approx(5.5) and s["p99_jct"] == pytest.approx(9.91)
    assert s["throughput_jobs_per_s"] == pytest.approx(10 / 19)
    assert s["throughput_tokens_per_s"] == pytest.approx(50 / 19)
    with pytest.raises(ValueError):
        summarize_jobs([])
    with pytest.raises(ValueError, match="not finished"):
        job_metrics([Job(spec=make_job("x", [(1, 1)]))])
