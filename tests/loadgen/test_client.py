"""The load generator's client reads what servers send back: Retry-After in both of its
forms, and a base URL given as a host root or as the API root."""

import datetime
import email.utils

from astraea.loadgen.client import api_url, retry_after_seconds


def test_retry_after_as_seconds_or_an_http_date():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) == 1.0 and retry_after_seconds("soon") == 1.0
    assert retry_after_seconds("-4") == 0.0 and retry_after_seconds("1e9") == 60.0
    assert retry_after_seconds("nan") == 1.0
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=20)
    waited = retry_after_seconds(email.utils.format_datetime(later, usegmt=True))
    assert 18 <= waited <= 20
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # already past


def test_base_url_may_be_the_host_root():
    for given in ("http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/"):
        assert api_url(given) == "http://h:8000/v1"


def test_tpot_is_the_time_per_token_after_the_first():
    from astraea.loadgen.client import CallRecord

    call = CallRecord(0, 0.0, ttft=0.5, latency=2.5, completion_tokens=5)
    assert call.tpot == 0.5  # (2.5 - 0.5) / 4
    assert CallRecord(0, 0.0, ttft=0.5, latency=0.5, completion_tokens=1).tpot is None
    assert CallRecord(0, 0.0).tpot is None


def test_itl_is_the_gap_between_content_chunks():
    """vllm bench serve's ITL: one gap per content chunk after the first; role-only and
    usage chunks do not count."""
    import asyncio
    import json

    import httpx

    from astraea.loadgen.client import CallRecord, _read_stream

    def data(obj) -> str:
        return "data: " + json.dumps(obj) + "\n\n"

    chunks = [data({"choices": [{"delta": {"role": "assistant"}}]})]
    chunks += [data({"choices": [{"delta": {"content": c}}]}) for c in "abcd"]
    chunks += [data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})]
    response = httpx.Response(200, content=("".join(chunks) + "data: [DONE]\n\n").encode())
    call = CallRecord(0, 0.0)
    text = asyncio.run(_read_stream(response, 0.0, call))
    assert text == "abcd" and call.completion_tokens == 4
    assert len(call.itl) == 3 and all(gap >= 0 for gap in call.itl)
