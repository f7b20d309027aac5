"""One schemathesis fuzz loop over the server's own OpenAPI document, shared by the fuzz test
(``tests/server/test_fuzz.py``, an in-process server with a tiny model) and the fuzz
benchmark (``benchmarks/serve_fuzz.py``, an ``astraea serve`` subprocess).

:meth:`Fuzzer.run` loads ``/openapi.json`` from the server, sends every operation's coverage
cases (each field's boundary values, wrong types, missing fields, undocumented methods),
then hypothesis-generated cases, positive and negative, from a fixed seed; it checks each
answer against the document and keeps what came back in a :class:`FuzzReport`: requests by
route and status, failures by kind, one example input per kind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

# What every answer must satisfy. Not ``positive_data_acceptance``: a schema-valid body may
# still name an unknown model (404) or not fit the context (400), which the document says.
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,  # coverage sends undocumented methods: 405 with an Allow header
)
SERVER_ERROR_CODES = {"ST101", "ST103"}  # "server error", "undocumented status" (the 500)
JOB_IDS = ("fuzz-a", "fuzz-b", "fuzz-c")  # shared by some calls, so jobs continue and clash
LENGTH_FIELDS = ("max_tokens", "max_completion_tokens", "min_tokens")
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

# each (operation, mode)'s share of a round's hypothesis examples; the others get OTHER_SHARE
SHARES = {
    ("POST /v1/chat/completions", "positive"): 0.3,
    ("POST /v1/chat/completions", "negative"): 0.15,
    ("POST /v1/completions", "positive"): 0.3,
    ("POST /v1/completions", "negative"): 0.15,
}
OTHER_SHARE = 0.05  # operations without inputs stop after a couple anyway
Key = tuple[str, str, int]  # (failure kind, "ROUTE (phase, mode)", status; 0: no answer)


@dataclasses.dataclass
class FuzzReport:
    """What a run sent and what went wrong; ``examples`` keeps one input per failure key."""

    sent: Counter[tuple[str, int]] = dataclasses.field(default_factory=Counter)  # route, status
    failures: Counter[Key] = dataclasses.field(default_factory=Counter)
    examples: dict[Key, dict[str, Any]] = dataclasses.field(default_factory=dict)
    operations: set[str] = dataclasses.field(default_factory=set)  # those in the document
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def fail(self, kind: str, label: str, status: int, case: Any, answer: str) -> None:
        key = (kind, label, status)
        self.failures[key] += 1
        if key not in self.examples:
            body = None if isinstance(case.body, NotSet) else case.body
            self.examples[key] = {
                "request": f"{case.method} {case.formatted_path}",
                "headers": {k: str(v) for k, v in (case.headers or {}).items()},
                "body": repr(body)[:1500],
                "answer": answer[:1000],
            }

    def by_route_and_status(self) -> dict[str, int]:
        """``"POST /v1/completions 400"``: how many; ``error`` where no answer came."""
        out: Counter[str] = Counter()
        for (route, status), n in self.sent.items():
            out[f"{route} {status or 'error'}"] += n
        return dict(sorted(out.items()))

    def by_kind(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (kind, _, _), n in self.failures.items():
            out[kind] += n
        return dict(sorted(out.items()))

    def summary(self, kinds: Callable[[str], bool] = lambda kind: True) -> str:
        """Requests by route and status, failures by kind, then each failure (``kinds``
        picks which) with the input that caused it."""
        lines = [
            f"{self.total} requests in {self.seconds:.0f} s: {self.by_route_and_status()}",
            f"failures by kind: {self.by_kind()}",
        ]
        for (kind, label, status), n in sorted(self.failures.items()):
            if kinds(kind):
                lines.append(f"FAIL x{n} [{kind}] {label} -> {status}")
                lines += [f"    {k}: {v}" for k, v in self.examples[kind, label, status].items()]
        return "\n".join(lines)


class Fuzzer:
    """Sends schemathesis cases to the server at ``root``, checks each answer with ``checks``
    and counts it in ``report``.

    Left alone, nearly every generated model name is a 404 and every answer greedy, so most
    valid bodies (four in five, and every coverage one) are pinned before they go: ``model``
    (the served one; also in some ``{name}`` paths), some of them to ``temperature`` where
    they leave it unset (top_p and seed only matter when sampling), some to one of
    ``job_ids`` (in the body or the ``X-Astraea-Job-Id`` header), and with ``max_tokens_cap``
    their output lengths cut to 1..cap. The rest go as generated.
    """

    def __init__(
        self,
        root: str,
        model: str,
        *,
        job_ids: Sequence[str] = JOB_IDS,
        temperature: float | None = 1.0,
        max_tokens_cap: int | None = None,
        timeout: float = 30.0,
        checks: Sequence[Any] = CHECKS,
    ) -> None:
        self.root, self.model, self.job_ids = root, model, tuple(job_ids)
        self.temperature, self.max_tokens_cap = temperature, max_tokens_cap
        self.timeout, self.checks = timeout, list(checks)
        self.report = FuzzReport()

    def run(
        self,
        *,
        budget: int | None = None,
        at_least: int = 0,
        seed: int = 0,
        max_rounds: int = 10,
        shares: Mapping[tuple[str, str], float] = SHARES,
        other_share: float = OTHER_SHARE,
    ) -> FuzzReport:
        """Every operation's coverage cases, then rounds of hypothesis examples until
        ``at_least`` requests were sent (one round at least, ``max_rounds`` at most; round
        ``r`` draws from seed ``seed + r``). Each round shares out ``budget`` examples (by
        default, the requests still short of ``at_least``) over the operations and modes,
        ``shares`` giving each (operation label, mode) its share, ``other_share`` the rest."""
        started = time.monotonic()
        schema = schemathesis.openapi.from_url(self.root + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        self.report.operations.update(operation.label for operation in operations)
        try:
            with requests.Session() as session:
                for operation in operations:  # coverage: a fixed set per operation
                    config = schema.config.generation_for(operation=operation, phase="coverage")
                    for case in schema.iter_coverage_cases(
                        operation, generation_modes=list(MODES), generation_config=config
                    ):
                        self.send(session, case, "coverage")
                for r in range(max_rounds):
                    left = at_least - self.report.total
                    if r and left <= 0:
                        break
                    for operation in operations:
                        for mode in MODES:
                            share = shares.get((operation.label, mode.value), other_share)
                            count = round((left if budget is None else budget) * share)
                            self._generate(session, operation, mode, count, seed + r)
        finally:
            self.report.seconds = time.monotonic() - started
        return self.report

    def _generate(self, session: Any, operation: Any, mode: Any, count: int, at: int) -> None:
        """``count`` hypothesis examples of one operation in one mode, from seed ``at``."""

        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            self.send(session, case, "fuzzing")

        test = settings(
            max_examples=max(1, count),
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(hypothesis.seed(at)(fuzz))
        with contextlib.suppress(Unsatisfiable):  # no inputs to negate (GET /health)
            test()

    def send(self, session: Any, case: Any, phase: str) -> None:
        """One request; its status counted, its answer checked, every failure kept by kind."""
        report = self.report
        mode = case.meta.generation.mode if case.meta is not None else GenerationMode.POSITIVE
        if mode is GenerationMode.POSITIVE:  # coverage's valid bodies all name the model ""
            self.pin(case, report.total, always=phase == "coverage")
        route = f"{case.method} {case.operation.path}"  # coverage also sends other methods
        label = f"{route} ({phase}, {mode.value})"
        try:
            response = case.call(base_url=self.root, session=session, timeout=self.timeout)
        except requests.RequestException as exc:
            report.sent[route, 0] += 1
            report.fail(f"transport: {type(exc).__name__}", label, 0, case, repr(exc))
            return
        status = response.status_code
        report.sent[route, status] += 1
        if status >= 500:
            report.fail("5xx", label, status, case, response.text)
        elif _stream_error(response):  # a stream that ends in a server error is a 5xx too
            report.fail("5xx in stream", label, status, case, response.text)
        try:
            case.validate_response(response, checks=self.checks)
        except (Failure, FailureGroup) as exc:
            for failure in exc.exceptions if isinstance(exc, FailureGroup) else (exc,):
                if status >= 500 and failure.code in SERVER_ERROR_CODES:
                    continue  # already recorded as a 5xx, with its input
                answer = f"{failure.message[:400]} | {response.text}"
                report.fail(f"{failure.code} {failure.title}", label, status, case, answer)

    def pin(self, case: Any, n: int, always: bool) -> None:
        """Pin the ``n``-th request's valid body (see the class doc)."""
        body, ids = case.body, self.job_ids
        if isinstance(body, dict) and (n % 5 or always):
            body["model"] = self.model
            if self.max_tokens_cap is not None:
                _cap_lengths(body, self.max_tokens_cap)
            unset = body.get("temperature") is None and self.temperature is not None
            if unset and (n % 3 == 0 or always):
                body["temperature"] = self.temperature
            if n % 4 == 0:
                body["astraea_job_id"] = ids[n % len(ids)]
            elif n % 7 == 0:
                case.headers = {**(case.headers or {}), "X-Astraea-Job-Id": ids[n % len(ids)]}
        if n % 5 == 0 and "name" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "name": self.model}


def _cap_lengths(body: dict[str, Any], cap: int) -> None:
    """Output lengths above ``cap`` cut to 1..cap, so that every answer stays short."""
    for name in LENGTH_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            body[name] = 1 + value % cap


def _stream_error(response: Any) -> bool:
    """Whether an event stream carries a server-side error event."""
    content_type = (response.headers.get("content-type") or [""])[0]  # wire form: lists
    if not content_type.startswith("text/event-stream"):
        return False
    return any(
        line.startswith('data: {"error"') and "internal_server_error" in line
        for line in response.text.splitlines()
    )
