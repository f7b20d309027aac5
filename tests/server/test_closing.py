"""Structured answers end inside max_tokens (server/closing.py): the closer's completions
are valid for the grammar, a looping answer is closed just before its budget ends, an
answer that ends by itself is left alone, and ``structured_close=False`` cuts as before."""

import json
import math

import pytest
import torch

from astraea.server.closing import CLOSE_MARGIN, Budget, JsonScan
from astraea.server.structured import Grammars
from tests.server.conftest import IM_END, MODEL, idle

pytest.importorskip("llguidance")
jsonschema = pytest.importorskip("jsonschema")

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 2}, "minItems": 1},
        "ok": {"type": "boolean"},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["name", "age", "tags", "ok", "unit"],
}


@pytest.fixture(scope="module")
def grammars(tokenizer):
    return Grammars(tokenizer, 258, (IM_END,))


def text_of(grammars, ids):
    return grammars.tokenizer.decode_str([t for t in ids if t != IM_END])


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "{",
        '{"name": "Al',
        '{"name": "Al", "age": 3',
        '{"name": "Al", "age": 3, "tags": [',
        '{"name": "Al", "age": 3, "tags": ["so", "so", "s',
        '{"name": "A\\"b", "age": 12, "tags": ["xy"], "ok": t',
        '{"name": "A", "age": 1, "tags": ["xy"], "ok": false, "unit": "ce',
    ],
)
def test_shortest_completion_is_valid_for_the_schema(grammars, prefix):
    matcher = grammars.json_schema(PERSON, "p").matcher().matcher
    ids = grammars.tokenizer.tokenize_str(prefix)
    assert matcher.consume_tokens(ids)
    path = grammars.closer.shortest(matcher, ids, 200)  # one byte a token here
    assert path is not None and path[-1] == IM_END
    assert matcher.consume_tokens(path[:-1]) and matcher.is_accepting()
    jsonschema.validate(json.loads(prefix + text_of(grammars, path)), PERSON)


def test_shortest_completion_of_a_tool_call(grammars):
    from types import SimpleNamespace as NS

    params = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    tools = [NS(function=NS(name="search", parameters=params))]
    matcher = grammars.tool_calls(tools, True, "tool_choice").matcher().matcher
    prefix = '{"name": "search", "arguments": {"q": "pizza pizza piz'
    ids = grammars.tokenizer.tokenize_str(prefix)
    assert matcher.consume_tokens(ids)
    path = grammars.closer.shortest(matcher, ids, 64)
    assert text_of(grammars, path) == '"}}\n</tool_call>'


def test_parallel_tool_calls_are_not_closed_once_whole(grammars):
    """After a whole call, a later one the budget would cut is left to the parser (which
    drops it) rather than finished by the closer; a first call is still closed."""
    from types import SimpleNamespace as NS

    params = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    tools = [NS(function=NS(name="s", parameters=params))]
    one = '{"name": "s", "arguments": {"q": "a"}}\n</tool_call>'
    second = one + '\n<tool_call>\n{"name": "s", "arguments": {"q": "'
    first = '{"name": "s", "arguments": {"q": "'
    for parallel, text, closes in (
        (True, second, False),
        (True, first, True),
        (False, first, True),
    ):
        grammar = grammars.tool_calls(tools, parallel, "tool_choice")
        ids = grammars.tokenizer.tokenize_str(text)
        end = len('"}}\n</tool_call>') + 1  # the completion, EOS: not one token to spare
        matcher = grammar.bounded(len(ids) + end).matcher()
        for token in ids:
            matcher.accept(token)
        row = torch.zeros(258)
        row[ord("a")] = 5.0
        matcher.mask(row)
        assert (row[ord("a")] == -math.inf) == closes, text


def test_no_completion_within_the_limit(grammars):
    matcher = grammars.regex("[a-z]+@[a-z]+[.]com", "r").matcher().matcher
    ids = grammars.tokenizer.tokenize_str("abc")
    assert matcher.consume_tokens(ids)
    assert grammars.closer.shortest(matcher, ids, 30) is None  # letters forever: give up
    assert grammars.closer.shortest(matcher, [], 0) is None


def test_json_scan_strings_escapes_and_brackets():
    scan = JsonScan()
    scan.feed(b'{"a": ["x\\"]')
    assert scan.in_string and scan.closer() == '"'
    scan.feed(b'", {"b": 1}')
    assert scan.closer() == "]"
    scan.feed(b"]")
    assert scan.closer() == "}"


def looping_decode(grammar, budget, favourite):
    """Decode with a 'model' that always wants ``favourite`` (a byte) when the grammar allows
    it, else the first allowed token; returns the tokens and the matcher."""
    matcher = grammar.bounded(budget).matcher()
    out = []
    while len(out) < budget:
        row = torch.zeros(258)
        row[favourite] = 10.0
        matcher.mask(row)
        token = int(row.argmax())
        matcher.accept(token)
        out.append(token)
        if token == IM_END:
            break
    return out, matcher


def test_a_looping_answer_is_closed_before_its_budget(grammars):
    grammar = grammars.json_schema({"type": "object", "properties": {"s": {"type": "string"}}}, "p")
    out, matcher = looping_decode(grammar, 30, ord("a"))
    assert out[-1] == IM_END and len(out) <= 30
    assert json.loads(text_of(grammars, out))["s"].startswith("aaaa")
    assert matcher.closed
    # without a budget (the server's --no-structured-close) the answer is cut
    free = grammars.json_schema({"type": "object", "properties": {"s": {"type": "string"}}}, "p")
    free.closer = None
    out, matcher = looping_decode(free, 30, ord("a"))
    assert len(out) == 30 and IM_END not in out and not matcher.closed


def test_the_model_closing_by_itself_is_not_marked(grammars):
    """A plan the model follows anyway (its own choice each time) is not a forced end."""
    grammar = grammars.choice(["yes"], "c")
    out, matcher = looping_decode(grammar, 3 + CLOSE_MARGIN, ord("y"))
    assert text_of(grammars, out) == "yes" and not matcher.closed


def test_budget_keeps_the_tokens_after_which_a_completion_fits(grammars):
    schema = {"type": "object", "properties": {"s": {"type": "string"}}}
    matcher = grammars.json_schema(schema, "p").bounded(100).matcher()
    budget = matcher.budget
    assert isinstance(budget, Budget)
    prefix = grammars.tokenizer.tokenize_str('{"s": "aaaa')
    for token in prefix:
        matcher.accept(token)

    def allowed(left):
        budget.max_tokens = len(prefix) + left
        row = torch.full((258,), -math.inf)
        row[ord("a")], row[ord("b")], row[ord('"')] = 3.0, 2.0, 1.0
        row[ord("\n")] = 0.5  # not allowed in a JSON string
        budget.restrict(matcher.matcher, row)
        return {t for t in range(258) if row[t] > -math.inf}

    every = {ord("a"), ord("b"), ord('"'), ord("\n")}
    assert allowed(3 + CLOSE_MARGIN + 1) == every  # '"', '}', EOS and more to spare
    assert allowed(4) == {ord('"'), ord("a"), ord("b")}  # one token to spare: check each
    assert not budget.closed
    assert allowed(3) == {ord('"')}  # none to spare: the completion
    assert budget.closed and budget.plan == [ord('"'), ord("}"), IM_END]


def test_server_closes_a_looping_answer(serve):
    """The scripted model writes a string longer than max_tokens: the server's answer is
    JSON valid for the schema, finish_reason length; with structured_close off it is cut."""
    loop = '{"name": "' + "ab" * 40 + '"}'
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}
    for close in (True, False):
        server = serve(structured_close=close)
        api = server.openai()
        out = api.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "say:" + loop}],
            response_format=fmt,
            max_tokens=30,
        )
        choice = out.choices[0]
        assert choice.finish_reason == "length" and out.usage.completion_tokens <= 30
        if close:
            assert json.loads(choice.message.content)["name"].startswith("abab")
        else:
            with pytest.raises(ValueError):
                json.loads(choice.message.content)
        # an answer that fits ends by itself, untouched
        whole = api.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": 'say:{"name": "Al"}'}],
            response_format=fmt,
            max_tokens=16,
        )
        assert whole.choices[0].message.content == '{"name": "Al"}'
        assert whole.choices[0].finish_reason == "stop"
        server.wait_for(idle)
