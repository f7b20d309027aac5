"""/metrics speaks vLLM's families (names, buckets, ``model_name`` label) as a vLLM Grafana
dashboard reads them, and the values move with the traffic; ours stay alongside."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from astraea.server.call_metrics import ITL_BUCKETS, REQUEST_BUCKETS, token_buckets
from tests.server.conftest import MODEL, idle
from tests.server.test_chat import CALL_TEXT, TOOLS, user

LABELS = {"model_name": MODEL, "engine": "0"}


def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    text = httpx.get(server.root + "/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted({**LABELS, **labels}.items())))]


def test_vllm_families_exist_from_the_start_with_vllms_buckets(serve):
    server = serve()
    s = scrape(server)
    for name in ("vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
                 "vllm:num_preemptions_total"):  # fmt: skip
        assert value(s, name) == 0.0, name
    assert value(s, "vllm:num_requests_running") == value(s, "vllm:num_requests_waiting") == 0
    assert value(s, "vllm:kv_cache_usage_perc") == 0.0
    assert value(s, "vllm:time_to_first_token_seconds_bucket", le="0.001") == 0
    assert value(s, "vllm:inter_token_latency_seconds_bucket", le=str(ITL_BUCKETS[-1])) == 0
    assert value(s, "vllm:e2e_request_latency_seconds_bucket", le=str(REQUEST_BUCKETS[-1])) == 0
    assert value(s, "vllm:request_queue_time_seconds_count") == 0
    assert value(s, "vllm:request_prompt_tokens_bucket", le="2000.0") == 0  # 1-2-5 to 2048


def test_values_move_with_a_tool_calling_job(serve):
    server = serve()
    api = server.openai()
    headers = {"X-Astraea-Job-Id": "agent-m"}
    messages = [user("say:" + CALL_TEXT)]
    first = api.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, extra_headers=headers
    )
    server.wait_for(lambda snap: snap["tool_wait"].get("preserved") == 1)
    s = scrape(server)
    assert value(s, "vllm:prompt_tokens_total") == first.usage.prompt_tokens
    assert value(s, "vllm:generation_tokens_total") == first.usage.completion_tokens
    assert value(s, "vllm:request_success_total", finished_reason="stop") == 1
    assert 0 < value(s, "vllm:kv_cache_usage_perc") < 1  # the waiting job keeps its KV
    assert value(s, "vllm:time_to_first_token_seconds_count") == 1
    assert value(s, "vllm:e2e_request_latency_seconds_count") == 1
    assert value(s, "vllm:request_queue_time_seconds_count") == 1
    assert value(s, "vllm:inter_token_latency_seconds_count") >= first.usage.completion_tokens - 2
    assert value(s, "vllm:request_time_per_output_token_seconds_count") == 1
    assert value(s, "vllm:prefix_cache_hits_total") == 0  # a new job: nothing cached
    assert s[("astraea_tool_wait_jobs", (("kv", "preserved"),))] == 1  # ours, alongside
    call = first.choices[0].message
    messages += [
        call.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": "say:Sunny."},
    ]
    second = api.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, extra_headers=headers
    )
    server.wait_for(idle)
    s = scrape(server)
    prompts = first.usage.prompt_tokens + second.usage.prompt_tokens
    assert value(s, "vllm:prompt_tokens_total") == prompts
    assert value(s, "vllm:prefix_cache_queries_total") == prompts
    # the continuation found the first call's context in the KV cache, all but the answer's
    # last token: sampled, never fed back, it has no KV yet (the new prefill computes it)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached > 1 and value(s, "vllm:prefix_cache_hits_total") == cached - 1
    assert value(s, "vllm:e2e_request_latency_seconds_count") == 2
    assert value(s, "vllm:request_prompt_tokens_count") == 2
    assert value(s, "vllm:kv_cache_usage_perc") == 0.0  # the job ended, its KV freed
    assert s[("astraea_tool_wait_seconds_count", ())] == 1  # the gap between the two calls


def test_token_buckets_follow_vllms_1_2_5_rule():
    assert token_buckets(2048) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]
    assert token_buckets(1) == [1]
