"""Output length of a call (its ``n_gen``), two ways behind one interface.

``OracleOutputLength`` reads the current segment's true length, as the Astraea paper's
evaluation does (a segment-level oracle that knows nothing of later segments).
``HistoryOutputLength`` is deployable: the mean output of the job's own earlier calls,
else of its category so far, else a prior.
"""

from __future__ import annotations

from typing import Protocol

from astraea.core.job import Job


class OutputLengthPredictor(Protocol):
    def remaining_output(self, job: Job) -> float: ...
    def observe(self, job: Job) -> None: ...
    def forget(self, job_id: str) -> None: ...


class OracleOutputLength:
    def remaining_output(self, job: Job) -> float:
        return job.max_output_tokens - job.num_output_tokens

    def observe(self, job: Job) -> None:
        return None

    def forget(self, job_id: str) -> None:
        return None


class HistoryOutputLength:
    def __init__(self, prior: float = 128.0) -> None:
        self._prior = prior
        self._by_job: dict[str, tuple[int, int]] = {}  # job_id -> (calls, tokens)
        self._by_category: dict[str, tuple[int, int]] = {}

    def remaining_output(self, job: Job) -> float:
        calls, tokens = self._by_job.get(job.job_id, (0, 0))
        if not calls:
            calls, tokens = self._by_category.get(job.spec.category, (0, 0))
        expected = tokens / calls if calls else self._prior
        return max(1.0, expected - job.num_output_tokens)

    def observe(self, job: Job) -> None:
        """Learn from a call that just ended (``job.num_output_tokens`` is its length)."""
        n = job.num_output_tokens
        calls, tokens = self._by_job.get(job.job_id, (0, 0))
        self._by_job[job.job_id] = (calls + 1, tokens + n)
        calls, tokens = self._by_category.get(job.spec.category, (0, 0))
        self._by_category[job.spec.category] = (calls + 1, tokens + n)
        if job.is_last_segment:
            self._by_job.pop(job.job_id, None)

    def forget(self, job_id: str) -> None:
        """The job ended early: its per-job history goes."""
        self._by_job.pop(job_id, None)
