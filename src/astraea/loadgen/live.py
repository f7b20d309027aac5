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
    jobs replayed against it from a client thread while this thread runs the engine, and a
    check that the run left no job and no KV block behind."""
    from astraea.server import ServerConfig, create_app
    from astraea.server.foreground import run_beside

    reports = []
    for policy in policies:
        if on_start is not None:
            on_start(policy)
        app = create_app(make_engine(policy), ServerConfig(served_model_name=options.model))

        def client(url: str, label: str = policy, app: Any = app) -> tuple[BenchReport, Any]:
            run_options = dataclasses.replace(options, base_url=url)
            report = run_bench(specs, run_options, label, on_job_done)
            return report, app.state.service.worker.snapshot().result(30)

        # The engine on this thread, where its model was loaded (server/foreground.py).
        report, leftover = run_beside(app, client)
        if leftover["jobs"] or leftover["device_free"] != leftover["device_blocks"]:
            raise RuntimeError(f"{policy}: the run left jobs or KV blocks behind: {leftover}")
        reports.append(report)
    return reports


def alternating(policies: Sequence[str], rounds: int) -> list[list[str]]:
    """The run order of each round: A B, B A, A B, ... so that a drift in machine load
    over the run weighs on every policy alike."""
    return [list(policies) if r % 2 == 0 else list(policies)[::-1] for r in range(rounds)]


@dataclasses.dataclass
class LoadProbe:
    """How busy the rest of the machine kept the CPU during a run: the 1-minute load
    average at both ends, and the cores other processes used on average (``/proc/stat``
    minus this process's own CPU time)."""

    load_before: float = 0.0
    load_after: float = 0.0
    others_cores: float | None = None
    _start: tuple[float, float | None, float] = (0.0, None, 0.0)

    def __enter__(self) -> LoadProbe:
        import os
        import time

        from astraea.engine.threads import machine_busy_seconds

        self.load_before = os.getloadavg()[0]
        self._start = (time.monotonic(), machine_busy_seconds(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        import os
        import time

        from astraea.engine.threads import machine_busy_seconds

        self.load_after = os.getloadavg()[0]
        busy, (t0, b0, p0) = machine_busy_seconds(), self._start
        if busy is not None and b0 is not None:
            wall = max(time.monotonic() - t0, 1e-9)
            self.others_cores = max(0.0, (busy - b0) - (time.process_time() - p0)) / wall

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_avg_before": self.load_before,
            "load_avg_after": self.load_after,
            "others_cores": self.others_cores,
        }


def bench_rounds(
    make_engine: Callable[[str], Any],
    specs: Sequence[JobSpec],
    policies: Sequence[str],
    rounds: int,
    options: BenchOptions,
    *,
    on_start: Callable[[int, str], None] | None = None,
    on_job_done: Callable[[JobRecord], None] | None = None,
    on_run: Callable[[int, BenchReport, LoadProbe], None] | None = None,
) -> list[list[tuple[BenchReport, LoadProbe]]]:
    """``bench_policies`` in alternating rounds (``alternating``): per round, each policy's
    report and the machine's load during its run, in the round's run order."""
    results = []
    for r, order in enumerate(alternating(policies, rounds)):
        row = []
        for policy in order:
            if on_start is not None:
                on_start(r, policy)
            with LoadProbe() as probe:
                [report] = bench_policies(
                    make_engine, specs, [policy], options, on_job_done=on_job_done
                )
            row.append((report, probe))
            if on_run is not None:
                on_run(r, report, probe)
        results.append(row)
    return results
