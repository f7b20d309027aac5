"""Job-level metrics (JCT, slowdown) and their aggregates, shared by every executor."""

from astraea.metrics.jct import JobMetrics, job_metrics, percentile, summarize_jobs

__all__ = ["JobMetrics", "job_metrics", "percentile", "summarize_jobs"]
