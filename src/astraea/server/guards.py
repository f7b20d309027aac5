"""What a request passes before it reaches the engine: the API key, the body's size, strict
validation, the model name, the job header, and the bounded admission queue."""

from __future__ import annotations

import hmac
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from astraea.server.calls import Call
from astraea.server.errors import APIError, from_validation
from astraea.server.jobs import Claim
from astraea.server.protocol import JOB_HEADER, MAX_ID_CHARS
from astraea.server.service import Service

M = TypeVar("M", bound=BaseModel)


def authorize(service: Service, request: Request) -> None:
    key = service.config.api_key
    if key is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
        raise APIError(401, "Incorrect API key provided", code="invalid_api_key")


async def read_body(service: Service, request: Request, cls: type[M]) -> M:
    """Authorize, bound the body's size, validate it, and check the model name."""
    authorize(service, request)
    limit = service.config.max_body_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise APIError(413, f"the body is larger than {limit} bytes", code="body_too_large")
    body = await request.body()
    if len(body) > limit:
        raise APIError(413, f"the body is larger than {limit} bytes", code="body_too_large")
    try:
        req = cls.model_validate_json(body)
    except ValidationError as exc:
        raise from_validation(exc) from None
    service.check_model(req.model)  # type: ignore[attr-defined]
    return req


def job_header(request: Request, body_id: str | None) -> str | None:
    header = request.headers.get(JOB_HEADER)
    if header is not None and not 0 < len(header) <= MAX_ID_CHARS:
        raise APIError(
            400,
            f"{JOB_HEADER} must have 1 to {MAX_ID_CHARS} characters",
            param=JOB_HEADER,
            code="invalid_value",
        )
    return header or body_id


def admit(service: Service, call: Call, claim: Claim) -> None:
    """Into the bounded admission queue (429 when full), then to the engine thread."""
    if not service.worker.alive:
        service.table.unclaim(claim)
        raise APIError(503, "the engine thread is not running", code="engine_down")
    try:
        call.handle.enqueue()
    except APIError:
        service.table.unclaim(claim)
        raise
    service.worker.submit(call)
