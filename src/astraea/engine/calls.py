"""Blocking and streaming conveniences over ``Engine.submit`` / ``Engine.step``.

``generate`` runs calls to completion (vLLM's ``LLM.generate`` shape), ``stream`` yields a
call's tokens as steps sample them; both drive the same step loop the server's worker does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from astraea.engine.sampling import Output, Request, SamplingParams

if TYPE_CHECKING:
    from astraea.core.scheduler import Scheduler


class EngineCalls:
    """Mixed into ``Engine``: everything here goes through ``submit`` and ``step``."""

    scheduler: Scheduler
    stalled: bool
    _auto_ids: itertools.count[int]

    if TYPE_CHECKING:  # Engine's own, typed here for the methods below

        def submit(
            self, job_id: str, prompt: str | Sequence[int], params: SamplingParams | None = None,
            *, last: bool = False,
        ) -> Request: ...  # fmt: skip

        def step(self) -> list[Request]: ...

    def run_until_done(self, requests: Sequence[Request]) -> None:
        while not all(r.finished for r in requests):
            self.step()
            if self.stalled:
                raise RuntimeError("the engine is stuck: calls wait but nothing can run")
        failed = next((r for r in requests if r.error is not None), None)
        if failed is not None:
            raise RuntimeError(f"call of job {failed.job_id!r} failed") from failed.error

    def generate(
        self,
        prompts: str | Sequence[int] | Sequence[str | Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        job_ids: Sequence[str] | None = None,
        *,
        last: bool | None = None,
    ) -> list[Output]:
        """Run calls to completion (a text prompt is encoded as is: apply the chat template
        first for chat). Without ``job_ids`` each call is a one-call job (``last``); with
        them the jobs wait for a tool afterwards unless ``last=True``."""
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]  # type: ignore[list-item]
        n = len(prompts)
        if params is None or isinstance(params, SamplingParams):
            params = [params or SamplingParams()] * n
        if job_ids is None:
            job_ids = [self._new_job_id() for _ in range(n)]
            last = True if last is None else last
        if len(params) != n or len(job_ids) != n:
            raise ValueError("prompts, params and job_ids differ in length")
        requests = [
            self.submit(j, p, sp, last=bool(last))
            for j, p, sp in zip(job_ids, prompts, params, strict=True)
        ]
        self.run_until_done(requests)
        return [r.output for r in requests]  # type: ignore[misc]

    def _new_job_id(self) -> str:
        while (job_id := f"gen-{next(self._auto_ids)}") in self.scheduler.jobs:
            pass
        return job_id

    async def stream(
        self,
        job_id: str,
        prompt: str | Sequence[int],
        params: SamplingParams | None = None,
        *,
        last: bool = False,
    ) -> AsyncIterator[int]:
        """Yield the call's token ids as they are sampled; concurrent streams share steps."""
        request = self.submit(job_id, prompt, params, last=last)
        sent = 0
        while True:
            while sent < len(request.token_ids):
                yield request.token_ids[sent]
                sent += 1
            if request.finished:
                return
            self.step()
            if self.stalled:
                raise RuntimeError("the engine is stuck: calls wait but nothing can run")
            await asyncio.sleep(0)
