"""The tool-aware ChatML template and the tool-call parser."""

import json

from astraea.server.chat_template import (
    CALL_OPEN,
    ChatTemplate,
    canonical_arguments,
    held_back,
    parse_tool_calls,
)
from astraea.server.protocol import ChatMessage, ToolSpec
from tests.server.conftest import byte_tokenizer

SMOL_TEMPLATE = (  # SmolLM2-135M-Instruct's own template (from its GGUF)
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
WEATHER = ToolSpec.model_validate(
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
)


def msgs(*pairs):
    return [ChatMessage.model_validate({"role": r, "content": c}) for r, c in pairs]


def smol_template() -> ChatTemplate:
    tok = byte_tokenizer()
    tok.chat_template = SMOL_TEMPLATE
    return ChatTemplate.for_tokenizer(tok), tok


def test_without_tools_it_is_the_models_own_template():
    template, tok = smol_template()
    assert template.default_system.startswith("You are a helpful AI assistant named SmolLM")
    for conversation in (
        [("user", "Hi")],
        [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "2+2?")],
        [("user", "Hi"), ("assistant", "Hello"), ("user", "more")],
    ):
        dicts = [{"role": r, "content": c} for r, c in conversation]
        assert template.render(msgs(*conversation)) == tok.apply_chat_template(
            dicts, tokenize=False
        )
    assert ChatTemplate.for_tokenizer(byte_tokenizer()).default_system is None  # no template


def test_tools_go_into_the_system_turn_and_calls_render_back():
    template, _ = smol_template()
    text = template.render(msgs(("user", "Weather in Paris?")), [WEATHER])
    system = text[: text.index("<|im_end|>")]
    assert system.startswith("<|im_start|>system\nYou are a helpful AI assistant")
    assert '"name": "get_weather"' in system and "<tools>" in system and CALL_OPEN in system
    answer = ChatMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        }
    )
    tool = ChatMessage.model_validate({"role": "tool", "tool_call_id": "call_1", "content": "sun"})
    turns = template.continuation([answer, tool])
    assert turns == (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": '
        '{"city": "Paris"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>tool\nsun<|im_end|>\n<|im_start|>assistant\n"
    )
    developer = template.render(msgs(("developer", "Rules"), ("user", "x")))
    assert developer.startswith("<|im_start|>system\nRules<|im_end|>")


def test_forced_prefixes():
    named = {"type": "function", "function": {"name": "get_weather"}}
    from astraea.server.protocol import NamedToolChoice

    assert ChatTemplate.forced_prefix("auto") == ""
    assert ChatTemplate.forced_prefix("required") == CALL_OPEN + "\n"
    choice = NamedToolChoice.model_validate(named)
    prefix = ChatTemplate.forced_prefix(choice, [WEATHER])  # up to its first argument
    assert prefix == '<tool_call>\n{"name": "get_weather", "arguments": {"'
    assert ChatTemplate.forced_prefix(choice).endswith('"arguments": {')  # takes none


def test_parser_splits_content_and_calls():
    names = ["get_weather", "search"]
    text = (
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        '</tool_call>\n<tool_call>{"name": "search", "arguments": "{\\"q\\": \\"x\\"}"}</tool_call>'
    )
    content, calls = parse_tool_calls(text, names)
    assert content == "Let me check."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("search", {"q": "x"}),
    ]
    cut = '<tool_call>\n{"name": "search", "arguments": {"q": 1}}'  # max_tokens hit
    assert parse_tool_calls(cut, names)[1][0].name == "search"
    for bad in (
        '<tool_call>{"name": "unknown", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "search", "arguments": [1]}</tool_call>',
        '<tool_call>{"name": "search", "arguments": {"q": </tool_call>',
        "<tool_call>not json</tool_call>",
    ):
        assert parse_tool_calls(bad, names) == (bad, [])
    assert parse_tool_calls("plain", names) == ("plain", [])
    assert parse_tool_calls("", names) == (None, [])
    assert parse_tool_calls(text, []) == (text, [])  # tools off: nothing is parsed


def test_hold_back_and_canonical_arguments():
    assert held_back("Hello") == 5
    assert held_back("Hello <tool") == 6
    assert held_back("Hi <tool_call>{") == 3
    assert held_back("a <") == 2
    assert canonical_arguments('{"b": 1, "a": 2}') == canonical_arguments({"a": 2, "b": 1})
    assert canonical_arguments("not json ") == "not json"
