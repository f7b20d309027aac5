"""Schemathesis fuzzes every operation in the server's own OpenAPI document, over real HTTP.

The document (``/openapi.json``) is the contract clients and code generators rely on, so
every answer must conform to it (status, content type, body shape), invalid bodies must be
refused with a 4xx, nothing may answer 5xx or log an error, and afterwards the server must
hold nothing: no job, every KV block free, an empty admission queue.

One fuzz run (a module fixture, through the shared harness in ``tests/fuzzing.py``) feeds
the tests below, each a separate requirement, so a failure names what broke. The engine is
the tiny random Llama with a 256-token context, so whatever ``max_tokens`` the fuzzer picks,
an answer takes at most a few hundred decode steps; a short job TTL reclaims the jobs that
fuzzed calls leave waiting on a tool.
``ASTRAEA_FUZZ_SCALE`` (default 1) multiplies the number of generated requests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

pytest.importorskip("schemathesis")
pytest.importorskip("requests")

from astraea.engine.config import EngineConfig
from astraea.engine.engine import Engine
from astraea.engine.model import LlamaModel
from astraea.engine.runner import ModelRunner
from astraea.engine.tokenizer import Tokenizer
from astraea.server import ServerConfig, create_app
from tests.fuzzing import Fuzzer, FuzzReport
from tests.server.conftest import MODEL, LiveServer, idle

SCALE = float(os.environ.get("ASTRAEA_FUZZ_SCALE", "1"))
# generated requests (one round), shared out by the harness's SHARES: 300 positive and 150
# negative per completions route, 60 per other operation and mode
EXAMPLES = 1000
OTHER_SHARE = 0.06
MIN_REQUESTS = 1000
JOB_TTL = 1.0
LOGGERS = ("astraea", "uvicorn.error")  # astraea.server and below, and uvicorn's own errors

Fuzzed = tuple[LiveServer, FuzzReport, list[logging.LogRecord]]


class _Collect(logging.Handler):
    """Keeps every WARNING-or-worse record the server's loggers emit during the run."""

    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


@pytest.fixture(scope="module")
def fuzzed(tiny_model: LlamaModel, tokenizer: Tokenizer) -> Iterator[Fuzzed]:
    """A fresh server, fuzzed once (one round of examples); the tests below read the report,
    the server's log records and the server after."""
    config = EngineConfig(
        dtype="float32", block_size=8, num_gpu_blocks=32, num_cpu_blocks=32, num_threads=1
    )
    engine = Engine(ModelRunner(tiny_model, config), tokenizer=tokenizer, check_integrity=True)
    app = create_app(
        engine, ServerConfig(served_model_name=MODEL, job_ttl=JOB_TTL, default_max_tokens=16)
    )
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    with LiveServer(app) as server:
        for logger in loggers:
            logger.addHandler(handler)
        try:
            fuzzer = Fuzzer(server.root, MODEL)
            report = fuzzer.run(budget=int(EXAMPLES * SCALE), other_share=OTHER_SHARE)
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
        print("\n" + report.summary())
        yield server, report, records


def _server_error(kind: str) -> bool:
    return kind.startswith(("5xx", "transport"))


def test_the_fuzzer_sent_enough_requests(fuzzed: Fuzzed) -> None:
    """At least 1,000 requests, over every operation the document lists."""
    _, report, _ = fuzzed
    assert report.total >= MIN_REQUESTS * min(SCALE, 1.0), report.summary()
    missed = report.operations - {route for route, _ in report.sent}
    assert len(report.operations) >= 6 and not missed, (report.operations, missed)


def test_no_answer_is_a_server_error(fuzzed: Fuzzed) -> None:
    """No 5xx and no dropped connection or timeout, whatever the body."""
    _, report, _ = fuzzed
    if any(_server_error(kind) for kind, _, _ in report.failures):
        pytest.fail(report.summary(_server_error), pytrace=False)


def test_every_answer_conforms_to_the_openapi_document(fuzzed: Fuzzed) -> None:
    """Documented status, content type, headers and body; invalid input refused (4xx);
    undocumented methods answered 405 with ``Allow``."""
    _, report, _ = fuzzed
    if any(not _server_error(kind) for kind, _, _ in report.failures):
        pytest.fail(report.summary(lambda kind: not _server_error(kind)), pytrace=False)


def test_nothing_is_logged_as_an_error(fuzzed: Fuzzed) -> None:
    """Client input must never make the server log an error or a traceback."""
    _, _, records = fuzzed
    bad = []
    for r in records:
        if r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage():
            error = r.exc_info[1] if r.exc_info else None
            cause = f" ({type(error).__name__}: {error})" if error is not None else ""
            bad.append(f"{r.name} {r.levelname}: {r.getMessage()[:300]}{cause}")
    if bad:
        pytest.fail(f"{len(bad)} records:\n" + "\n".join(bad), pytrace=False)


def test_the_server_holds_nothing_afterwards(fuzzed: Fuzzed) -> None:
    """Every fuzzed call, answered, refused or failed, gives back its job, KV blocks and
    admission place (tool-waiting jobs once the TTL reclaims them)."""
    server, _, _ = fuzzed
    snap = server.wait_for(idle, timeout=JOB_TTL + 10)
    assert snap["running"] == 0, snap
    assert server.service.admission.count == 0
    server.engine.check_integrity()
