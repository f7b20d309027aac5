"""Job identity: conversation keys, claims by name or by history, releases and the TTL."""

import pytest

from astraea.core import Policy, Scheduler, SchedulerConfig
from astraea.core.job import JobSpec, Segment, ToolCall
from astraea.server.chat_template import ParsedCall
from astraea.server.errors import APIError
from astraea.server.jobs import JobTable, answer_key, conversation_keys, label_tool
from astraea.server.protocol import ChatMessage


def msg(role, content=None, **extra):
    return ChatMessage.model_validate({"role": role, "content": content, **extra})


CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
FIRST = [msg("user", "hi")]


def test_keys_ignore_ids_spacing_and_argument_order():
    sent_back = msg("assistant", None, tool_calls=[{**CALL, "id": "other"}])
    respelled = {**CALL, "function": {"name": "f", "arguments": '{ "a":1 }'}}
    keys = conversation_keys([*FIRST, sent_back], None)
    assert keys == conversation_keys(
        [msg("user", "hi "), msg("assistant", "", tool_calls=[respelled])], None
    )
    ours = answer_key(conversation_keys(FIRST, None)[-1], None, [ParsedCall("f", '{"a":1}')])
    assert ours == keys[-1]
    tools = [{"type": "function", "function": {"name": "f"}}]
    from astraea.server.protocol import ToolSpec

    assert conversation_keys(FIRST, [ToolSpec.model_validate(t) for t in tools]) != (
        conversation_keys(FIRST, None)
    )


def test_automatic_continuation_needs_our_answer_and_an_idle_job():
    clock = [0.0]
    table = JobTable(ttl=10, clock=lambda: clock[0])
    keys = conversation_keys(FIRST, None)
    first = table.claim_chat(None, keys)
    assert first.created and first.base is None
    answer = answer_key(keys[-1], "hello", [])
    table.release(first.job_id, [1, 2, 3], answer, 2, None)
    follow = conversation_keys([*FIRST, msg("assistant", "hello"), msg("user", "more")], None)
    claim = table.claim_chat(None, follow)
    assert claim.job_id == first.job_id and claim.matched == 2 and claim.base.context == [1, 2, 3]
    other = table.claim_chat(None, follow)  # the job is busy: a new job, not a conflict
    assert other.job_id != first.job_id and other.created
    table.unclaim(other)
    assert table.get(other.job_id) is None
    rewritten = conversation_keys([*FIRST, msg("assistant", "HELLO"), msg("user", "x")], None)
    table.unclaim(claim)
    assert table.claim_chat(None, rewritten).created  # history differs: a new job


def test_named_jobs_continue_restart_or_conflict():
    table = JobTable(ttl=10)
    keys = conversation_keys(FIRST, None)
    claim = table.claim_chat("agent-1", keys)
    assert claim.job_id == "agent-1" and claim.created
    with pytest.raises(APIError) as busy:
        table.claim_chat("agent-1", keys)
    assert busy.value.status == 409
    table.release("agent-1", [5], answer_key(keys[-1], "a", []), 2, None)
    longer = conversation_keys([*FIRST, msg("assistant", "a"), msg("tool", "r")], None)
    assert table.claim_chat("agent-1", longer).base is not None
    table.release("agent-1", [5, 6], "k", 9, None)
    restart = table.claim_chat("agent-1", keys)  # does not extend its history
    assert restart.restart and restart.base is None and restart.job_id == "agent-1"


def test_completions_continue_by_text_or_token_prefix():
    table = JobTable(ttl=10)
    assert table.claim_completion(None, "abc").created  # anonymous: always new
    claim = table.claim_completion("j", "abc")
    table.release("j", [1, 2], None, 0, "abc def")
    assert table.claim_completion("j", "abc def ghi").base.text == "abc def"
    table.release("j", [1, 2, 3], None, 0, "abc def ghi")
    assert table.claim_completion("j", [1, 2, 3, 4]).base is not None
    table.release("j", [1, 2, 3, 4], None, 0, None)
    assert table.claim_completion("j", [9, 9, 9, 9, 9]).restart
    assert claim.job_id == "j"


def test_ttl_expires_only_idle_jobs():
    clock = [0.0]
    table = JobTable(ttl=5, clock=lambda: clock[0])
    table.claim_chat("busy", ["k"])
    table.claim_chat("idle", ["k"])
    table.release("idle", [1], "key", 1, None)
    clock[0] = 4.0
    assert table.expired() == []
    clock[0] = 6.0
    assert table.expired() == ["idle"]
    assert table.get("idle") is None and table.get("busy") is not None
    assert table.claim_chat(None, ["x", "key"]).created  # the key went with the job


def test_label_tool_names_the_waiting_call():
    sched = Scheduler(SchedulerConfig(num_device_blocks=8), Policy())
    spec = JobSpec("j", 0.0, "engine", (Segment(3, 4, ToolCall("tool", 0.0)),), open_ended=True)
    job = sched.add_job(spec, 0.0)
    label_tool(sched, "j", "search", 2.5)
    assert job.segment.tool == ToolCall("search", 2.5)
    label_tool(sched, "j", "search", None)
    assert job.segment.tool == ToolCall("search", 0.0)
    assert job.spec is spec  # the arrival record stays as it came
    sched.add_job(JobSpec("last", 0.0, "engine", (Segment(3, 4),)), 0.0)
    label_tool(sched, "last", "search", 1.0)  # a last call has no tool to name
    assert sched.jobs["last"].segment.tool is None
