"""What a request passes before it reaches the engine: the API key, the body's size, strict
validation, the model name, the job header, and the bounded admission queue."""

from __future__ import annotations

import hmac
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from astraea.server.calls import Call
from astraea.server.errors import APIError, from_validation
from astraea.server.jobs import Claim
from astraea.server.protocol import JOB_HEADER, MAX_ID_CHARS, JobId
from astraea.server.service import Service

M = TypeVar("M", bound=BaseModel)
_JOB_ID = TypeAdapter(JobId)
OFF_LOOP_BYTES = 64 << 10  # bodies larger than this are validated on a worker thread


def authorize(service: Service, request: Request) -> None:
    """``Authorization: Bearer KEY`` when the server has a key (the scheme in any case, as
    RFC 9110 has it); a 401 says which scheme it wants."""
    key = service.config.api_key
    if key is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
        raise APIError(
            401,
            "Incorrect API key provided",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def read_body(service: Service, request: Request, cls: type[M]) -> M:
    """Authorize, read the body up to the size limit (chunked bodies too: reading stops at
    the limit), validate it off the event loop when it is large, check the model name."""
    authorize(service, request)
    body = await read_limited(request, service.config.max_body_bytes)
    try:
        if len(body) > OFF_LOOP_BYTES:
            req = await service.off_loop(cls.model_validate_json, body)
        else:
            req = cls.model_validate_json(body)
    except ValidationError as exc:
        raise from_validation(exc) from None
    service.check_model(req.model)  # type: ignore[attr-defined]
    return req


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to be larger than ``limit`` bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> APIError:
    # Connection: close, so the server does not read (or wait for) the rest of the body.
    return APIError(
        413,
        f"the body is larger than {limit} bytes",
        code="body_too_large",
        headers={"Connection": "close"},
    )


def job_header(request: Request, body_id: str | None) -> str | None:
    """The job named by the header (it wins) or the body; header ids obey the body's rule."""
    header = request.headers.get(JOB_HEADER)
    if header is None:
        return body_id
    try:
        return _JOB_ID.validate_python(header)
    except ValidationError:
        raise APIError(
            400,
            f"{JOB_HEADER} must have 1 to {MAX_ID_CHARS} visible ASCII characters",
            param=JOB_HEADER,
            code="invalid_value",
        ) from None


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
