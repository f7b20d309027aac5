"""Job identity across HTTP requests, and the table of jobs between calls.

OpenAI's API is stateless: an agent resends its whole conversation each call. A job is
named, in order, by the ``X-Astraea-Job-Id`` header, the ``astraea_job_id`` body field, or
automatically: each conversation prefix has a key (a hash chain over canonical messages,
tools first), and a request whose messages extend a job's last conversation *plus the answer
we gave* continues that job. The table is shared by the event loop (claims) and the engine
thread (releases, drops, TTL), so every method takes its lock.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from astraea.core.job import ToolCall
from astraea.core.scheduler import Scheduler
from astraea.server.chat_template import ParsedCall, canonical_arguments
from astraea.server.errors import APIError
from astraea.server.protocol import ChatMessage, ToolSpec


# ---- conversation keys ---------------------------------------------------------------------
def _chain(previous: str, item: object) -> str:
    text = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((previous + text).encode()).hexdigest()[:32]


def _message_item(role: str, content: str, calls: Sequence[tuple[str, str]]) -> list:
    """Role, stripped text and calls (name, canonical arguments): what the model saw, not
    the ids or extra fields a client library may add or drop."""
    role = "system" if role == "developer" else role
    return [role, content.strip(), [[n, canonical_arguments(a)] for n, a in calls]]


def conversation_keys(
    messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] | None
) -> list[str]:
    """``keys[i]`` names the conversation ``messages[: i + 1]`` under these tools."""
    key = _chain("", [t.model_dump(exclude_none=True) for t in tools or ()])
    keys = []
    for m in messages:
        calls = [(c.function.name, c.function.arguments) for c in m.tool_calls or ()]
        key = _chain(key, _message_item(m.role, m.text, calls))
        keys.append(key)
    return keys


def answer_key(previous: str, content: str | None, calls: Sequence[ParsedCall]) -> str:
    """The key of the conversation after our answer, as the client will send it back."""
    return _chain(
        previous, _message_item("assistant", content or "", [(c.name, c.arguments) for c in calls])
    )


def label_tool(scheduler: Scheduler, job_id: str, name: str, latency: float | None) -> None:
    """Name the tool a job's call ends in (its latency category) and the client's latency
    hint. The engine books every open call with a generic tool; the real name is known only
    once the answer is parsed, and the policies' tool-latency learning, KV reviews and
    prefetching read it from the job's current call. A job's last call has no tool."""
    if scheduler.jobs[job_id].segment.tool is not None:
        scheduler.name_tool(job_id, ToolCall(name, latency if latency is not None else 0.0))


# ---- the table -----------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class JobRecord:
    """A job between (or during) its calls, as the server sees it."""

    job_id: str
    context: list[int] = field(default_factory=list)  # token ids in the engine's context
    chat_key: str | None = None  # chat: the conversation so far, our last answer included
    chat_len: int = 0
    text: str | None = None  # completions: prompt + completion text so far
    busy: bool = True  # a call is in flight
    idle_since: float = 0.0


@dataclass(frozen=True, slots=True)
class Claim:
    """Which job a request belongs to. ``base`` is set when it continues the job (its
    context is already in the engine), ``restart`` when an explicit id names a job whose
    history the request does not extend (the old one ends, a new one starts under its id)."""

    job_id: str
    base: JobRecord | None = None
    matched: int = 0  # chat: messages already in the job's context
    restart: bool = False
    created: bool = False


class JobTable:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._jobs: dict[str, JobRecord] = {}
        self._by_key: dict[str, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    # ---- claims (event loop) -----------------------------------------------------------------
    def claim_chat(self, explicit: str | None, keys: Sequence[str]) -> Claim:
        with self._lock:
            if explicit is not None:
                return self._claim_named(
                    explicit,
                    lambda r: (
                        r.chat_key is not None
                        and len(keys) > r.chat_len
                        and keys[r.chat_len - 1] == r.chat_key
                    ),
                    lambda r: r.chat_len,
                )
            for i in range(len(keys) - 2, -1, -1):  # the request must add a message
                record = self._jobs.get(self._by_key.get(keys[i], ""))
                if record is not None and not record.busy and record.chat_key == keys[i]:
                    record.busy = True
                    return Claim(record.job_id, record, matched=i + 1)
            return self._new(None)

    def claim_completion(self, explicit: str | None, prompt: str | list[int]) -> Claim:
        """A completion continues only a job named explicitly, whose text (or token ids)
        the prompt extends."""
        with self._lock:
            if explicit is None:
                return self._new(None)
            if isinstance(prompt, str):
                return self._claim_named(
                    explicit,
                    lambda r: (
                        r.text is not None
                        and len(prompt) > len(r.text)
                        and prompt.startswith(r.text)
                    ),
                )
            return self._claim_named(
                explicit,
                lambda r: (
                    bool(r.context)
                    and len(prompt) > len(r.context)
                    and prompt[: len(r.context)] == r.context
                ),
            )

    def _claim_named(
        self,
        job_id: str,
        extends: Callable[[JobRecord], bool],
        matched: Callable[[JobRecord], int] = lambda r: 0,
    ) -> Claim:
        record = self._jobs.get(job_id)
        if record is None:
            return self._new(job_id)
        if record.busy:
            raise APIError(409, f"job {job_id!r} has a call in progress", code="job_busy")
        record.busy = True
        if extends(record):
            return Claim(job_id, record, matched=matched(record))
        return Claim(job_id, restart=True)

    def _new(self, job_id: str | None) -> Claim:
        while job_id is None or job_id in self._jobs:
            job_id = f"job-{uuid.uuid4().hex[:16]}"
        self._jobs[job_id] = JobRecord(job_id)
        return Claim(job_id, created=True)

    def unclaim(self, claim: Claim) -> None:
        """The request was refused before reaching the engine: nothing changed."""
        with self._lock:
            if claim.created:
                self._jobs.pop(claim.job_id, None)
            elif (record := self._jobs.get(claim.job_id)) is not None:
                record.busy = False

    # ---- engine thread -----------------------------------------------------------------------
    def release(
        self, job_id: str, context: list[int], chat_key: str | None, chat_len: int, text: str | None
    ) -> None:
        """A call ended and the job waits for its tool."""
        with self._lock:
            record = self._jobs.setdefault(job_id, JobRecord(job_id))
            if record.chat_key is not None and self._by_key.get(record.chat_key) == job_id:
                del self._by_key[record.chat_key]
            record.context, record.chat_key, record.chat_len, record.text = (
                context,
                chat_key,
                chat_len,
                text,
            )
            record.busy, record.idle_since = False, self.clock()
            if chat_key is not None:
                self._by_key[chat_key] = job_id

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._drop(job_id)

    def _drop(self, job_id: str) -> None:
        record = self._jobs.pop(job_id, None)
        key = record.chat_key if record is not None else None
        if key is not None and self._by_key.get(key) == job_id:
            del self._by_key[key]

    def is_idle(self, job_id: str) -> bool:
        with self._lock:
            record = self._jobs.get(job_id)
            return record is not None and not record.busy

    def expired(self) -> list[str]:
        """Drop and return the jobs idle longer than the time-to-live (their tool never
        came back, or their agent stopped without saying so)."""
        now = self.clock()
        with self._lock:
            gone = [
                r.job_id
                for r in self._jobs.values()
                if not r.busy and now - r.idle_since > self.ttl
            ]
            for job_id in gone:
                self._drop(job_id)
        return gone
