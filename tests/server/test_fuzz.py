"""Schemathesis fuzzes every operation in the server's own OpenAPI document, over real HTTP.

The document (``/openapi.json``) is the contract clients and code generators rely on, so
every answer must conform to it (status, content type, body shape), invalid bodies must be
refused with a 4xx, nothing may answer 5xx or log an error, and afterwards the server must
hold nothing: no job, every KV block free, an empty admission queue.

One fuzz run (a module fixture) feeds the tests below, each a separate requirement, so a
failure names what broke. The engine is the tiny random Llama with a 256-token context,
so whatever ``max_tokens`` the fuzzer picks, an answer takes at most a few hundred decode
steps; a short job TTL reclaims the jobs that fuzzed calls leave waiting on a tool.
``ASTRAEA_FUZZ_SCALE`` (default 1) multiplies the number of generated requests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core import NotSet  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from astraea.engine.config import EngineConfig  # noqa: E402
from astraea.engine.engine import Engine  # noqa: E402
from astraea.engine.model import LlamaModel  # noqa: E402
from astraea.engine.runner import ModelRunner  # noqa: E402
from astraea.engine.tokenizer import Tokenizer  # noqa: E402
from astraea.server import ServerConfig, create_app  # noqa: E402
from tests.server.conftest import MODEL, LiveServer, idle  # noqa: E402

SCALE = float(os.environ.get("ASTRAEA_FUZZ_SCALE", "1"))
# generated requests per (operation, mode); operations without inputs stop after a couple
EXAMPLES = {
    ("POST /v1/chat/completions", GenerationMode.POSITIVE): 300,
    ("POST /v1/chat/completions", GenerationMode.NEGATIVE): 150,
    ("POST /v1/completions", GenerationMode.POSITIVE): 300,
    ("POST /v1/completions", GenerationMode.NEGATIVE): 150,
}
OTHER_EXAMPLES = 60
MIN_REQUESTS = 1000
# What every answer must satisfy. Not ``positive_data_acceptance``: a schema-valid body may
# still name an unknown model (404) or not fit the context (400), which the document says.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,  # coverage sends undocumented methods: 405 with an Allow header
]
_SERVER_ERROR_CODES = {"ST101", "ST103"}  # "server error", "undocumented status" (the 500)
JOB_IDS = ("fuzz-a", "fuzz-b", "fuzz-c")  # shared by some calls, so jobs continue and clash
JOB_TTL = 1.0
LOGGERS = ("astraea", "uvicorn.error")  # astraea.server and below, and uvicorn's own errors


@dataclasses.dataclass
class FuzzReport:
    """What the run sent and what went wrong; ``examples`` keeps one input per failure kind."""

    sent: Counter[tuple[str, str, int]] = dataclasses.field(default_factory=Counter)
    failures: Counter[tuple[str, str, int]] = dataclasses.field(default_factory=Counter)
    examples: dict[tuple[str, str, int], str] = dataclasses.field(default_factory=dict)
    records: list[logging.LogRecord] = dataclasses.field(default_factory=list)
    operations: set[str] = dataclasses.field(default_factory=set)  # those in the document
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def fail(self, kind: str, label: str, status: int, detail: str) -> None:
        key = (kind, label, status)
        self.failures[key] += 1
        self.examples.setdefault(key, detail)

    def summary(self, kinds: Callable[[str], bool] = lambda kind: True) -> str:
        """Requests by route and status, failures by kind, then each failure (``kinds``
        picks which) with the input that caused it."""
        by_status: Counter[str] = Counter()
        for (label, _, status), n in self.sent.items():
            by_status[f"{label} {status}"] += n
        by_kind: Counter[str] = Counter()
        for (kind, _, _), n in self.failures.items():
            by_kind[kind] += n
        lines = [
            f"{self.total} requests in {self.seconds:.0f} s: {dict(sorted(by_status.items()))}",
            f"failures by kind: {dict(sorted(by_kind.items()))}",
        ]
        for (kind, label, status), n in sorted(self.failures.items()):
            if kinds(kind):
                lines.append(f"FAIL x{n} [{kind}] {label} -> {status}")
                lines.append("    " + self.examples[(kind, label, status)].replace("\n", "\n    "))
        return "\n".join(lines)


Fuzzed = tuple[LiveServer, FuzzReport]


class _Collect(logging.Handler):
    """Keeps every WARNING-or-worse record the server's loggers emit during the run."""

    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


def _stream_error(response: Any) -> bool:
    """Whether an event stream carries a server-side error event."""
    content_type = (response.headers.get("content-type") or [""])[0]  # wire form: lists
    if not content_type.startswith("text/event-stream"):
        return False
    return any(
        line.startswith('data: {"error"') and "internal_server_error" in line
        for line in response.text.splitlines()
    )


def _describe(case: Any, got: str) -> str:
    body = None if isinstance(case.body, NotSet) else case.body
    sent = f"{case.method} {case.formatted_path} headers={dict(case.headers or {})} body={body!r}"
    return f"sent: {sent[:1500]}\ngot: {got[:600]!r}"


def _pin(case: Any, n: int, always: bool) -> None:
    """Point positive cases (most, or ``always``) at the served model, some at shared job ids
    and some to sampling, so they reach the engine and its sampler; left alone, nearly every
    generated model name is a 404 and every answer greedy."""
    if (n % 5 or always) and isinstance(case.body, dict):
        case.body["model"] = MODEL
        if case.body.get("temperature") is None and (n % 3 == 0 or always):
            case.body["temperature"] = 1.0  # sample: top_p and seed do nothing when greedy
        if n % 4 == 0:
            case.body["astraea_job_id"] = JOB_IDS[n % len(JOB_IDS)]
        elif n % 7 == 0:
            case.headers = {**(case.headers or {}), "X-Astraea-Job-Id": JOB_IDS[n % 3]}
    if n % 5 == 0 and "name" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "name": MODEL}


def run_fuzz(server: LiveServer, report: FuzzReport) -> None:
    """Every operation: schemathesis's coverage phase (each field's boundary values, wrong
    types, missing fields, undocumented methods), then hypothesis-generated bodies, positive
    and negative; each answer checked and recorded."""
    schema = schemathesis.openapi.from_url(server.root + "/openapi.json")
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            report.operations.add(operation.label)
            coverage = schema.config.generation_for(operation=operation, phase="coverage")
            cases = schema.iter_coverage_cases(
                operation, generation_modes=modes, generation_config=coverage
            )
            for case in cases:
                _send(server, session, case, "coverage", report)
            for mode in modes:
                examples = EXAMPLES.get((operation.label, mode), OTHER_EXAMPLES)

                @given(case=operation.as_strategy(generation_mode=mode))
                def fuzz(case: Any) -> None:
                    _send(server, session, case, "fuzzing", report)

                with contextlib.suppress(Unsatisfiable):  # no inputs to negate (GET /health)
                    settings(
                        max_examples=max(1, int(examples * SCALE)),
                        deadline=None,
                        database=None,
                        derandomize=True,  # the same requests while file and document stay
                        phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck),
                    )(fuzz)()


def _send(server: LiveServer, session: Any, case: Any, phase: str, report: FuzzReport) -> None:
    """One request; its status counted, its answer checked, every failure kept by kind."""
    mode = case.meta.generation.mode if case.meta is not None else GenerationMode.POSITIVE
    if mode is GenerationMode.POSITIVE:  # coverage's valid bodies all name the model ""
        _pin(case, report.total, always=phase == "coverage")
    op = f"{case.method} {case.operation.path}"  # coverage also sends other methods
    label = f"{op} ({phase}, {mode.value})"
    try:
        response = case.call(base_url=server.root, session=session, timeout=30)
    except requests.RequestException as exc:
        report.sent[(op, mode.value, 0)] += 1
        report.fail(f"transport: {type(exc).__name__}", label, 0, _describe(case, repr(exc)))
        return
    status = response.status_code
    report.sent[(op, mode.value, status)] += 1
    if status >= 500:
        report.fail("5xx", label, status, _describe(case, response.text))
    elif _stream_error(response):  # a stream that ends in a server error is a 5xx too
        report.fail("5xx in stream", label, status, _describe(case, response.text))
    try:
        case.validate_response(response, checks=CHECKS)
    except (Failure, FailureGroup) as exc:
        found = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
        for failure in found:
            if status >= 500 and failure.code in _SERVER_ERROR_CODES:
                continue  # already recorded as a 5xx, with its input
            detail = f"{failure.title}: {failure.message[:400]}\n{_describe(case, response.text)}"
            report.fail(f"{failure.code} {failure.title}", label, status, detail)


@pytest.fixture(scope="module")
def fuzzed(tiny_model: LlamaModel, tokenizer: Tokenizer) -> Iterator[Fuzzed]:
    """A fresh server, fuzzed once; the tests below read the report and the server after."""
    config = EngineConfig(
        dtype="float32", block_size=8, num_gpu_blocks=32, num_cpu_blocks=32, num_threads=1
    )
    engine = Engine(ModelRunner(tiny_model, config), tokenizer=tokenizer, check_integrity=True)
    app = create_app(
        engine, ServerConfig(served_model_name=MODEL, job_ttl=JOB_TTL, default_max_tokens=16)
    )
    report = FuzzReport()
    handler = _Collect(report.records)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    with LiveServer(app) as server:
        for logger in loggers:
            logger.addHandler(handler)
        started = time.monotonic()
        try:
            run_fuzz(server, report)
        finally:
            report.seconds = time.monotonic() - started
            for logger in loggers:
                logger.removeHandler(handler)
        print("\n" + report.summary())
        yield server, report


def _server_error(kind: str) -> bool:
    return kind.startswith(("5xx", "transport"))


def test_the_fuzzer_sent_enough_requests(fuzzed: Fuzzed) -> None:
    """At least 1,000 requests, over every operation the document lists."""
    _, report = fuzzed
    assert report.total >= MIN_REQUESTS * min(SCALE, 1.0), report.summary()
    missed = report.operations - {label for label, _, _ in report.sent}
    assert len(report.operations) >= 6 and not missed, (report.operations, missed)


def test_no_answer_is_a_server_error(fuzzed: Fuzzed) -> None:
    """No 5xx and no dropped connection or timeout, whatever the body."""
    _, report = fuzzed
    if any(_server_error(kind) for kind, _, _ in report.failures):
        pytest.fail(report.summary(_server_error), pytrace=False)


def test_every_answer_conforms_to_the_openapi_document(fuzzed: Fuzzed) -> None:
    """Documented status, content type, headers and body; invalid input refused (4xx);
    undocumented methods answered 405 with ``Allow``."""
    _, report = fuzzed
    if any(not _server_error(kind) for kind, _, _ in report.failures):
        pytest.fail(report.summary(lambda kind: not _server_error(kind)), pytrace=False)


def test_nothing_is_logged_as_an_error(fuzzed: Fuzzed) -> None:
    """Client input must never make the server log an error or a traceback."""
    _, report = fuzzed
    bad = []
    for r in report.records:
        if r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage():
            error = r.exc_info[1] if r.exc_info else None
            cause = f" ({type(error).__name__}: {error})" if error is not None else ""
            bad.append(f"{r.name} {r.levelname}: {r.getMessage()[:300]}{cause}")
    if bad:
        pytest.fail(f"{len(bad)} records:\n" + "\n".join(bad), pytrace=False)


def test_the_server_holds_nothing_afterwards(fuzzed: Fuzzed) -> None:
    """Every fuzzed call, answered, refused or failed, gives back its job, KV blocks and
    admission place (tool-waiting jobs once the TTL reclaims them)."""
    server, _ = fuzzed
    snap = server.wait_for(idle, timeout=JOB_TTL + 10)
    assert snap["running"] == 0, snap
    assert server.service.admission.count == 0
    server.engine.check_integrity()
