"""Bench our own server in-process under several policies, one after the other, on the same
jobs: the demo's and the serving benchmark's measurement (real model, real HTTP, wall clock).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from astraea.core.job import JobSpec
from astraea.loadgen.client import BenchOptions, JobRecord
from astraea.loadgen.runner import BenchReport, run_bench


def bench_policies(
    make_engine: Callable[[str], Any],
    specs: Sequence[JobSpec],
    policies: Sequence[str],
    options: BenchOptions,
    *,
    on_start: Callable[[str], None] | None = None,
    on_job_done: Callable[[JobRecord], None] | None = None,
) -> list[BenchReport]:
    """For each policy: a fresh engine (``make_engine(policy)``) behind a fresh server, the
    jobs replayed against it, and a check that the run left no job and no KV block behind."""
    from astraea.server import ServerConfig, create_app
    from astraea.server.background import BackgroundServer

    reports = []
    for policy in policies:
        if on_start is not None:
            on_start(policy)
        app = create_app(make_engine(policy), ServerConfig(served_model_name=options.model))
        with BackgroundServer(app) as server:
            run_options = dataclasses.replace(options, base_url=server.url)
            report = run_bench(specs, run_options, policy, on_job_done)
            leftover = app.state.service.worker.snapshot().result(30)
        if leftover["jobs"] or leftover["device_free"] != leftover["device_blocks"]:
            raise RuntimeError(f"{policy}: the run left jobs or KV blocks behind: {leftover}")
        reports.append(report)
    return reports
