#!/usr/bin/env python3
"""Render real chat templates with transformers' own renderer, for the Swift parity tests.

Writes Tests/NudgeLMTests/Fixtures/chat_templates/expected.json: for every template in
Tests/NudgeLMTests/Fixtures/chat_templates/templates/ and every conversation chosen for it,
the text transformers renders (or the exception it raises), plus the generation ranges
for templates with `{% generation %}` blocks. Also writes snippets.json: small templates that
each exercise one language feature (whitespace control, loops, macros, filters, tests, Python
methods, error messages), rendered by the same jinja2 environment.

The rendering follows `PreTrainedTokenizerBase.apply_chat_template(tokenize=False)`:
messages are normalized (keys whose value is None dropped), the named special tokens are
passed as variables, extra variables override them, and `render_jinja_template` does the
rest (reasoning fields aliased, tools and documents passed, `None` when absent).
`strftime_now` sees a fixed clock (FIXED_NOW) so the output is deterministic; the Swift
test injects the same date.

Setup (no torch needed):
    python3 -m venv /tmp/venv-jinja && /tmp/venv-jinja/bin/pip install transformers jinja2
    /tmp/venv-jinja/bin/python scripts/make_chat_template_fixtures.py
"""

import datetime as _datetime
import json
import pathlib
import sys

import jinja2
import transformers
from transformers.utils import chat_template_utils
from transformers.utils.chat_template_utils import _normalize_chat_messages, render_jinja_template

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests/NudgeLMTests/Fixtures/chat_templates"

# 2025-03-07 09:05:03: a single-digit day and hour exercise zero padding in strftime formats.
FIXED_NOW = _datetime.datetime(2025, 3, 7, 9, 5, 3)


class _FixedClock(_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


# `strftime_now` calls `datetime.now()` through the module's `datetime` name.
chat_template_utils.datetime = _FixedClock

# ---------------------------------------------------------------------------
# Conversations. Contents carry leading/trailing whitespace, quotes, newlines and
# non-ASCII text, so trimming, escaping and JSON encoding are all exercised.

SYSTEM = "You are a concise assistant. Answer in one sentence.\n"
USER_1 = "  Hi! What's the capital of France? Use \"quotes\" please.\n"
ASSISTANT_1 = "The capital of France is \"Paris\". 🇫🇷"
USER_2 = "And of Japan? Réponds en français — merci.\t"
ASSISTANT_2 = "La capitale du Japon est Tokyo (東京)."

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_temperature",
            "description": "Get the current temperature at a location.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": 'The location, in the format "City, Country"',
                    },
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The unit."},
                },
                "required": ["location", "unit"],
            },
            "return": {"type": "number", "description": "The temperature, as a float."},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_current_wind_speed",
            "description": "Get the current wind speed in km/h at a given location.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string", "description": "The location."}},
                "required": ["location"],
            },
        },
    },
]

TOOL_CALL_ID = "call9abcdefgh"


def tool_call_conversation(arguments_as_string):
    arguments = {"location": "Paris, France", "unit": "celsius"}
    if arguments_as_string:
        arguments = json.dumps(arguments)
    return [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What's the temperature in Paris right now?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": TOOL_CALL_ID,
                    "type": "function",
                    "function": {"name": "get_current_temperature", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "name": "get_current_temperature", "content": "22.0"},
    ]


CONVERSATIONS = {
    "system_multi_turn": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER_1},
        {"role": "assistant", "content": ASSISTANT_1},
        {"role": "user", "content": USER_2},
    ],
    "no_system": [
        {"role": "user", "content": USER_1},
        {"role": "assistant", "content": ASSISTANT_1},
        {"role": "user", "content": USER_2},
        {"role": "assistant", "content": ASSISTANT_2},
    ],
    "single_user": [{"role": "user", "content": "Hello"}],
    "bad_order": [
        {"role": "user", "content": "First question"},
        {"role": "user", "content": "Second question"},
    ],
    "tool_call": tool_call_conversation(arguments_as_string=False),
    "tool_call_string_arguments": tool_call_conversation(arguments_as_string=True),
    "reasoning": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "2+2 is 4.", "reasoning_content": "Adding two and two gives four."},
        {"role": "user", "content": "And 3+3?"},
    ],
    "think_tags": [
        {"role": "system", "content": "Think first."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>\nTwo plus two.\n</think>\n\nIt is 4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "<think>Three plus three.</think>It is 6."},
    ],
    "null_content": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": None},
        {"role": "user", "content": "Still there?"},
    ],
}

DOCUMENTS = [
    {"title": "Tall penguins", "text": "Emperor penguins are the tallest."},
    {"title": "Penguin habitats", "text": "Emperor penguins only live in Antarctica."},
]

# ---------------------------------------------------------------------------
# Templates: file stem, model, where the template text was taken from, the model's special
# tokens, and the extra cases it gets beyond the common ones.

LLAMA3 = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
MISTRAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
QWEN = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
DEEPSEEK = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}
COHERE = {"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>", "pad_token": "<PAD>"}

HFJS = "huggingface/huggingface.js packages/jinja/test/e2e.test.js"
OLLAMA = "ollama/ollama template/index.json"
SWIFT_JINJA = "huggingface/swift-jinja Tests/Templates (before v2)"

TOOLS_CASES = ["tools", "tool_call"]
TOOLS_CASES_STRING = ["tools", "tool_call_string_arguments"]
REASONING_CASES = ["reasoning", "think_tags", "no_thinking"]

TEMPLATES = [
    ("smollm2-instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "issue 20",
     {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>"}, []),
    ("qwen1.5-chat", "Qwen/Qwen1.5-72B-Chat", HFJS, QWEN, []),
    ("qwen2.5-instruct", "Qwen/Qwen2.5-7B-Instruct", HFJS, QWEN, TOOLS_CASES),
    ("qwen2.5-vl-instruct", "Qwen/Qwen2.5-VL-7B-Instruct", HFJS, QWEN, ["multimodal"]),
    ("qwen3", "Qwen/Qwen3-0.6B", HFJS, QWEN, TOOLS_CASES + REASONING_CASES),
    ("qwen3.5", "Qwen/Qwen3.5-4B", HFJS, QWEN, TOOLS_CASES + REASONING_CASES + ["multimodal"]),
    ("llama-2-chat", "meta-llama/Llama-2-7b-chat-hf", OLLAMA, MISTRAL, []),
    ("llama-3-instruct", "meta-llama/Meta-Llama-3-8B-Instruct", OLLAMA, LLAMA3, []),
    ("llama-3.1-instruct", "meta-llama/Llama-3.1-8B-Instruct", HFJS, LLAMA3, TOOLS_CASES + ["builtin_tools"]),
    ("llama-3.2-instruct", "meta-llama/Llama-3.2-3B-Instruct", SWIFT_JINJA, LLAMA3, TOOLS_CASES),
    ("llama-3.2-vision-instruct", "meta-llama/Llama-3.2-11B-Vision-Instruct", HFJS, LLAMA3, TOOLS_CASES + ["multimodal"]),
    ("mistral-7b-instruct-v0.1", "mistralai/Mistral-7B-Instruct-v0.1", HFJS, MISTRAL, []),
    ("mixtral-8x7b-instruct-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1", HFJS, MISTRAL, []),
    ("mistral-7b-instruct-v0.3", "mistralai/Mistral-7B-Instruct-v0.3", SWIFT_JINJA, MISTRAL, ["tools"]),
    ("mistral-nemo-instruct-2407", "mistralai/Mistral-Nemo-Instruct-2407", HFJS, MISTRAL, TOOLS_CASES),
    ("gemma-2-it", "google/gemma-2-9b-it", OLLAMA,
     {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}, []),
    ("gemma-3-it", "google/gemma-3-4b-it", OLLAMA,
     {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}, ["multimodal"]),
    ("phi-3-mini-instruct", "microsoft/Phi-3-mini-4k-instruct", OLLAMA,
     {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>", "pad_token": "<|endoftext|>"}, []),
    ("phi-4", "microsoft/phi-4", SWIFT_JINJA,
     {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|dummy_85|>"}, []),
    ("deepseek-llm-chat", "deepseek-ai/deepseek-llm-7b-chat", HFJS, DEEPSEEK, []),
    ("deepseek-coder-instruct", "deepseek-ai/deepseek-coder-33b-instruct", HFJS,
     {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<|EOT|>"}, []),
    ("deepseek-r1", "deepseek-ai/DeepSeek-R1", HFJS, DEEPSEEK, ["tool_call_string_arguments", "think_tags"]),
    ("deepseek-v3.1", "deepseek-ai/DeepSeek-V3.1", "ggml-org/llama.cpp models/templates", DEEPSEEK,
     ["tool_call_string_arguments", "think_tags", "reasoning", "thinking_on"]),
    ("command-r-v01", "CohereForAI/c4ai-command-r-v01", OLLAMA, COHERE, []),
    ("command-r-v01-tool-use", "CohereForAI/c4ai-command-r-v01 (tool_use)", HFJS, COHERE, TOOLS_CASES + ["documents"]),
    ("command-a", "CohereLabs/c4ai-command-a-03-2025", HFJS, COHERE, TOOLS_CASES + ["documents"]),
    ("granite-3.3-instruct", "ibm-granite/granite-3.3-8b-instruct", SWIFT_JINJA,
     {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<|end_of_text|>"},
     TOOLS_CASES + ["documents", "granite_thinking"]),
    ("hermes-2-pro-llama-3", "NousResearch/Hermes-2-Pro-Llama-3-8B", HFJS,
     {"bos_token": "<|begin_of_text|>", "eos_token": "<|im_end|>"}, TOOLS_CASES),
    ("functionary-medium-v2.2", "meetkai/functionary-medium-v2.2", HFJS, MISTRAL, ["tool_call_string_arguments"]),
    ("firefunction-v1", "fireworks-ai/firefunction-v1", HFJS, MISTRAL, ["firefunction"]),
    ("zephyr-7b-beta", "HuggingFaceH4/zephyr-7b-beta", HFJS, {**MISTRAL, "pad_token": "</s>"}, []),
    ("openchat-3.5", "openchat/openchat-3.5-0106", HFJS,
     {"bos_token": "<s>", "eos_token": "<|end_of_turn|>", "unk_token": "<unk>"}, []),
    ("falcon-rw-1b-chat", "ericzzz/falcon-rw-1b-chat", HFJS,
     {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}, []),
    ("internlm2-chat", "internlm/internlm2-chat-7b", HFJS, {**MISTRAL, "pad_token": "</s>"}, []),
    ("solar-10.7b-instruct", "upstage/SOLAR-10.7B-Instruct-v1.0", HFJS, {**MISTRAL, "pad_token": "</s>"}, []),
    ("codellama-70b-instruct", "codellama/CodeLlama-70b-Instruct-hf", HFJS,
     {"bos_token": "<s>", "eos_token": "<step>", "unk_token": "<unk>"}, []),
    ("smollm3", "HuggingFaceTB/SmolLM3-3B", HFJS, {"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
     TOOLS_CASES + REASONING_CASES + ["smollm3_flags"]),
    ("kimi-k2-thinking", "moonshotai/Kimi-K2-Thinking", HFJS,
     {"bos_token": "[BOS]", "eos_token": "[EOS]", "unk_token": "[UNK]", "pad_token": "[PAD]"},
     TOOLS_CASES_STRING + REASONING_CASES),
    ("glm-5.1", "zai-org/GLM-5.1", HFJS, {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
     TOOLS_CASES + REASONING_CASES),
    ("lfm2.5-vl", "LiquidAI/LFM2.5-VL-450M", HFJS,
     {"bos_token": "<|startoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|pad|>"}, TOOLS_CASES + ["multimodal"]),
    ("minicpm3", "openbmb/MiniCPM3-4B", HFJS, {"bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>"},
     TOOLS_CASES_STRING),
    ("hammer-2.1", "MadeAgents/Hammer2.1-7b", HFJS, QWEN, TOOLS_CASES),
    ("jamba-1.6", "ai21labs/AI21-Jamba-Large-1.6", HFJS,
     {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|pad|>", "unk_token": "<|unk|>"},
     TOOLS_CASES + ["documents"]),
]

COMMON_CASES = ["system_multi_turn", "no_system", "single_user", "bad_order", "null_content"]


def case_inputs(kind):
    """(conversation name, add_generation_prompt, tools, documents, extra variables) for a case kind."""
    return {
        "system_multi_turn": ("system_multi_turn", True, None, None, {}),
        "no_system": ("no_system", False, None, None, {}),
        "single_user": ("single_user", True, None, None, {}),
        "bad_order": ("bad_order", True, None, None, {}),
        "null_content": ("null_content", True, None, None, {}),
        "tools": ("system_multi_turn", True, TOOLS, None, {}),
        "tool_call": ("tool_call", True, TOOLS, None, {}),
        "tool_call_string_arguments": ("tool_call_string_arguments", True, TOOLS, None, {}),
        "builtin_tools": ("tool_call", True, TOOLS, None, {"builtin_tools": ["code_interpreter", "wolfram_alpha"]}),
        "reasoning": ("reasoning", True, None, None, {}),
        "think_tags": ("think_tags", False, None, None, {}),
        "no_thinking": ("system_multi_turn", True, None, None, {"enable_thinking": False}),
        "thinking_on": ("system_multi_turn", True, None, None, {"enable_thinking": True}),
        "documents": ("no_system", False, None, DOCUMENTS, {}),
        "granite_thinking": ("system_multi_turn", True, None, None, {"thinking": True}),
        "smollm3_flags": ("system_multi_turn", True, None, None,
                          {"enable_thinking": False, "xml_tools": None, "python_tools": None, "custom_instructions": "Be brief."}),
        "firefunction": ("firefunction", True, None, None, {}),
        "multimodal": ("multimodal", True, None, None, {}),
    }[kind]


CONVERSATIONS["firefunction"] = [
    {"role": "functions", "content": json.dumps([t["function"] for t in TOOLS])},
    {"role": "user", "content": "What's the temperature in Paris?"},
    {"role": "assistant", "content": "Let me check.",
     "tool_calls": [{"function": {"name": "get_current_temperature",
                                  "arguments": '{"location": "Paris, France", "unit": "celsius"}'}}]},
    {"role": "tool", "content": "22.0"},
]
CONVERSATIONS["multimodal"] = [
    {"role": "system", "content": [{"type": "text", "text": "Describe images."}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in this picture?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "A cat on a mat."}]},
    {"role": "user", "content": [{"type": "text", "text": "Thanks!"}]},
]

# ---------------------------------------------------------------------------
# Language snippets: small templates that exercise one feature each, rendered by the same
# jinja2 environment transformers compiles chat templates with. Written to snippets.json.

SNIPPETS = [
    # whitespace control, trim_blocks, lstrip_blocks
    ("{% if true %}\n  yes\n{% endif %}\nend", {}),
    ("  {% if true %}x{% endif %}  \n  {{ 'v' }}  \n", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("a\n  {%+ if true %}b{% endif %}", {}),
    ("a\n{% if true +%}\nb{% endif %}", {}),
    ("{# comment #}\nafter\n  {# indented comment #}\nline", {}),
    ("x {{- ' y ' -}} z\n", {}),
    ("{% for i in [1, 2] %}\n    {{ i }}\n{% endfor %}\n", {}),
    ("line1\r\nline2\rline3\n\n", {}),
    ("{% raw %}{{ not rendered }}{% endraw %}", {}),
    ("\t{% if true %}\ttab{% endif %}", {}),
    ("{%- set x = 1 %}\n\n  {{- x }}", {}),
    ("a {#- c -#} b", {}),
    # printing values
    ("{{ none }}|{{ true }}|{{ false }}|{{ 1 }}|{{ 1.0 }}|{{ 1.5e20 }}|{{ 0.00001 }}|{{ 1e16 }}|{{ -0.0 }}|{{ 10 / 4 }}|{{ 3 / 3 }}", {}),
    ("{{ [1, 'a', none, true, 2.5, [], {}] }}|{{ {'k': 'v', 'n': [1]} }}|{{ (1,) }}|{{ (1, 2) }}|{{ () }}", {}),
    ("{{ ['it\\'s', \"say \\\"hi\\\"\", 'tab\\there', 'new\\nline', 'caf\u00e9 \u2603'] }}", {}),
    ("{{ x }}|{{ x is defined }}|{{ x is undefined }}|{{ x | length }}|{{ x | list }}|{{ x ~ 'y' }}|{{ x == x }}", {}),
    ("{{ value }}", {"value": {"a": [1, 2.0, None, True], "b": "text"}}),
    # operators
    ("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}),
    ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'ab' * 3 }} {{ [1] * 3 }} {{ 'a' ~ 1 ~ none ~ x }} {{ 1 ~ 2 ~ 3 }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 2] < [1, 3] }} {{ 'abc' < 'abd' }} {{ true == 1 }}", {}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'x' in undefined_thing }}", {}),
    ("{{ not true }} {{ not 0 and 1 }} {{ 0 or 'fallback' }} {{ 1 and 2 }} {{ none or [] }} {{ not x is defined }}", {}),
    ("{{ 'yes' if true else 'no' }}|{{ 'yes' if false else 'no' }}|{{ 'yes' if false }}|{{ 1 if 0 else 2 if 0 else 3 }}", {}),
    ("{{ -3|abs }} {{ - 2 ** 2 }} {{ -(2 ** 2) }} {{ +5 }}", {}),
    # slicing and indexing
    ("{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ 'hello'[-3:] }} {{ 'hello'[:-1] }} {{ 'hello'[::2] }} {{ 'hello'[10:] }} {{ 'héllo'[1] }}", {}),
    ("{{ items[1:] }} {{ items[-1] }} {{ items[::-1] }} {{ items[-2:-1] }} {{ items[5:1:-2] }} {{ items[1::3] }}", {"items": [0, 1, 2, 3, 4, 5, 6]}),
    ("{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ d['b']['c'] }} {{ d.missing }} {{ l.0 }} {{ l[9] }}", {"d": {"a": 1, "b": {"c": 2}}, "l": ["z"]}),
    ("{{ d['items'] }}|{{ d.get is defined }}|{{ d['get'] is defined }}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.keys() }}|{{ d.items() }}|{{ d.values() | length }}", {"d": {"keys": "k", "items": 2}}),
    # loops
    ("{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {"items": ["a", "b", "c"]}),
    ("{% for x in items %}{{ loop.previtem }}-{{ x }}-{{ loop.nextitem }}|{% endfor %}", {"items": [1, 2, 3]}),
    ("{% for x in items if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% else %}empty{% endfor %}", {"items": [1, 2, 3]}),
    ("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}{% for x in none_value or [] %}{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for (a, b) in [[1, 2]] %}{{ a + b }}{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("{% for c in 'héy' %}[{{ c }}]{% endfor %}{% for x in undefined_list %}never{% endfor %}", {}),
    ("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for row in [[1, 2], [3]] %}{% for x in row %}{{ loop.depth }}{{ x }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("{% for x in [1, 2, 3] %}{{ loop.cycle('odd', 'even') }}{{ loop.changed(x > 1) }} {% endfor %}", {}),
    ("{{ range(3) | list }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }}", {}),
    # scoping, set, namespace
    ("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("{% set ns = namespace(total=0, items=[]) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.total }} {{ ns.items }}", {}),
    ("{% if true %}{% set y = 'set in if' %}{% endif %}{{ y }}", {}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 3, 4 %}{{ t }}", {}),
    ("{% set block %}\n  Hello {{ name }}!\n{% endset %}[{{ block }}]{% set trimmed | trim | upper %}  padded  {% endset %}[{{ trimmed }}]", {"name": "World"}),
    ("{% set x = 'outer' %}{% for i in [1] %}{{ x }}{% set x = 'inner' %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a is defined }}", {}),
    ("{% set d = dict(a=1, b='two') %}{{ d }} {{ dict(d, c=3) }} {{ dict([('x', 1)]) }}", {}),
    # macros and call blocks
    ("{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', 'Hi') }} {{ greet(name='C', punct='?') }}", {}),
    ("{% macro m(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k='v') }}", {}),
    ("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inside{% endcall %}", {}),
    ("{% macro list_items(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(item) list_items([1, 2]) %}[{{ item }}]{% endcall %}", {}),
    ("{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }}", {}),
    ("{% set v = 'global' %}{% macro show() %}{{ v }}{% endmacro %}{% set v = 'changed' %}{{ show() }}", {}),
    ("{% macro m(x) %}{{ x }}{% endmacro %}{{ m() }}|{{ m }}", {}),
    # filters
    ("{{ '  pad  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'Hello World' | lower }}|{{ 'hello world' | upper }}|{{ \"it's a dog-eat-dog (world)\" | title }}|{{ 'hELLO wORLD' | capitalize }}", {}),
    ("{{ [1, 2, 3] | length }} {{ 'héllo' | count }} {{ {'a': 1} | length }} {{ undefined_x | length }}", {}),
    ("{{ [1, 2, 3] | join(', ') }}|{{ users | join(', ', attribute='name') }}|{{ 'abc' | join('-') }}|{{ [1, none, 'x'] | join }}", {"users": [{"name": "ann"}, {"name": "bob"}]}),
    ("{{ x | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ none | d('n') }}|{{ 0 | d(5, boolean=true) }}", {}),
    ("{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'abc' | first }} {{ [] | first is defined }} {{ {'k': 1, 'j': 2} | first }} {{ {'k': 1, 'j': 2} | last }}", {}),
    ("{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '0x1A' | int(0, 16) }} {{ '3.5' | float }} {{ 'nan' | float }} {{ 'bad' | float }} {{ 2 | float }}", {}),
    ("{{ -4 | abs }} {{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 2.5 | round(0, 'floor') }} {{ 7 | round }} {{ 1.25 | round(1) }}", {}),
    ("{{ d | items | list }} {{ d.items() | list }} {{ undefined_x | items | list }}", {"d": {"b": 1, "a": [2]}}),
    ("{{ 'abc' | list }} {{ d | list }} {{ (1, 2) | list }} {{ 1 | string }} {{ [1, 'a'] | string }} {{ none | string }}", {"d": {"x": 1, "y": 2}}),
    ("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}", {"msgs": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}, {"role": "user", "content": "b"}]}),
    ("{{ msgs | rejectattr('role', 'eq', 'user') | list }} {{ msgs | selectattr('tool') | list }} {{ msgs | map(attribute='missing', default='dflt') | list }}", {"msgs": [{"role": "user"}, {"role": "tool", "tool": True}]}),
    ("{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ ['a', 'b'] | map('upper') | list }} {{ [1, 2, 3] | select('divisibleby', 3) | list }}", {}),
    ("{% if [] | selectattr('x') %}generator is truthy{% endif %}|{{ ([] | select | list) | length }}", {}),
    ("{{ ['b', 'A', 'a', 'B'] | unique | list }} {{ ['b', 'A', 'a', 'B'] | unique(case_sensitive=true) | list }} {{ ['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ users | sort(attribute='age') | map(attribute='n') | list }}", {"users": [{"n": "x", "age": 3}, {"n": "y", "age": 1}]}),
    ("{{ d | dictsort }} {{ d | dictsort(by='value', reverse=true) }} {{ [1, 5, 3] | max }} {{ [1, 5, 3] | min }} {{ [1, 2.5] | sum }} {{ 'abc' | reverse }} {{ [1, 2] | reverse | list }}", {"d": {"b": 1, "A": 2, "c": 0}}),
    ("{{ 'a b' | replace(' ', '_') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ '<b>&\"\\'' | e }} {{ '<i>' | escape }} {{ '<x>' | safe }} {{ 'one two  three' | wordcount }} {{ 'x' | center(5) }}|", {}),
    ("{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'x\\ny' | indent('> ') }}", {}),
    ("{{ '%s is %d years' | format('Ann', 30) }} {{ '%s and %r' % ('a', 'b') }} {{ '%05.1f' % 3.14159 }} {{ '%(a)s' % {'a': 1} }}", {}),
    ("{{ obj | tojson }}", {"obj": {"b": [1, 2.0, None, True, False], "a": "caf\u00e9 \"q\" \\ \n\t\u0001", "nested": {"x": {}}, "empty": []}}),
    ("{{ obj | tojson(indent=2) }}|{{ obj | tojson(indent=0) }}|{{ obj | tojson(sort_keys=true) }}|{{ obj | tojson(separators=(',', ':')) }}|{{ 'é😀' | tojson(true) }}", {"obj": {"b": [1, {"c": None}], "a": {}, "e": []}}),
    ("{{ 3.0 | tojson }} {{ 1e20 | tojson }} {{ 1e-7 | tojson }} {{ 'x' | tojson }} {{ none | tojson }} {{ (1, 2) | tojson }} {{ {1: 'int key', true: 'bool key'} | tojson }}", {}),
    ("{{ users | map(attribute='name') | join(', ') }} {{ users | map(attribute='info.age') | list }} {{ users | attr('x') }}", {"users": [{"name": "a", "info": {"age": 1}}, {"name": "b", "info": {"age": 2}}]}),
    ("{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    # tests
    ("{{ none is none }} {{ 1 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is sequence }} {{ 'a' is iterable }} {{ 1 is iterable }}", {}),
    ("{{ 1 is true }} {{ true is true }} {{ false is false }} {{ 0 is false }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 2 is in [1, 2] }} {{ 2 is eq 2 }} {{ 2 is equalto 3 }} {{ 3 is gt 2 }} {{ 3 is lt 2 }} {{ 2 is ge 2 }} {{ 'a' is ne 'b' }}", {}),
    ("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ x is none }} {{ none is sameas none }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ range is callable }} {{ (1, 2) is sequence }} {{ undefined_thing is sequence }}", {}),
    # string methods
    ("{{ '  x  '.strip() }}|{{ 'xxyxx'.strip('x') }}|{{ '  x'.lstrip() }}|{{ 'x\\n\\n'.rstrip() }}|{{ 'abcba'.rstrip('ab') }}|{{ '\\u3000ideographic\\u3000'.strip() }}", {}),
    ("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ ' a  b c '.split(None, 1) }} {{ 'l1\\nl2\\r\\nl3'.splitlines() }}", {}),
    ("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'hello'.startswith('l', 2) }} {{ 'Hi There'.upper() }} {{ 'Hi There'.lower() }} {{ \"they're bill's friends\".title() }} {{ 'hello world'.capitalize() }}", {}),
    ("{{ 'aXbXc'.replace('X', '-') }} {{ 'aXbXc'.replace('X', '-', 1) }} {{ 'abc'.replace('', '.') }} {{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ ', '.join(['a', 'b']) }}", {}),
    ("{{ '{} and {}'.format('a', 'b') }} {{ '{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='x') }} {{ '{{literal}}'.format() }} {{ '42'.isdigit() }} {{ 'ab'.isalpha() }} {{ '7'.zfill(3) }} {{ 'a=b=c'.partition('=') }} {{ 'x.txt'.removesuffix('.txt') }}", {}),
    ("{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }} {{ d.keys() }} {{ d.items() | list }} {{ [1, 2, 1].count(1) }} {{ ['a', 'b'].index('b') }}", {"d": {"a": 1}}),
    ("{{ message.content }} {{ message['content'] }} {{ message.tool_calls[0].function.name }} {{ message.tool_calls[0]['function']['arguments'] | tojson }}", {"message": {"content": "hi", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}}),
    ("{{ strftime_now('%Y-%m-%d %H:%M:%S %a %A %b %B %d %j %p %I %y') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%-d %B') }}", {}),
    # errors: expected messages come from jinja2 / Python
    ("{{ raise_exception('Custom message: ' ~ 42) }}", {}),
    ("{% if true %}{{ raise_exception(\"Roles must alternate\") }}{% endif %}", {}),
    ("{{ x.y }}", {}),
    ("{{ d.missing.deeper }}", {"d": {}}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 + 'a' }}", {}),
    ("{{ none + 1 }}", {}),
    ("{{ [1] + 'a' }}", {}),
    ("{{ undefined_x + 1 }}", {}),
    ("{{ 1 < 'a' }}", {}),
    ("{% for x in none %}{% endfor %}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{{ 5 | length }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ 5 | items | list }}", {}),
    ("{{ 1 ~ 2 + 3 }}", {}),
    ("{{ x.y is defined }}", {}),
    ("{{ {'a': 1}.keys() | tojson }}", {}),
    ("{% for x in items %}{{ x }}{% endfor %}\n{{ items[0] }}", {"items": ["only"]}),
    ("{{ undefined_x < 1 }}", {}),
    ("{{ 'unterminated }}", {}),
    ("{% if x %}never closed", {}),
    ("{% for %}", {}),
    ("{{ 1 + }}", {}),
    ("{% endif %}", {}),
    ("{{ x | nosuchfilter }}", {}),
    ("{{ x is nosuchtest }}", {}),
    ("line one\n{{ (1 }}", {}),
    ("{{ undefined_x | tojson }}", {}),
    ("{{ 'a' in 1 }}", {}),
    ("{{ 1 in 'abc' }}", {}),
    ("{% set x = 1 %}{% set x.attr = 2 %}", {}),
    ("{{ [].append(1) }}", {}),
    ("{{ range(200000) | length }}", {}),
    ("{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    ("{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", {}),
    ("{{ 'abc'.nosuchmethod() }}", {}),
    ("{{ undefined_fn() }}", {}),
    ("{{ 'x' | map | list }}", {}),
    ("{{ namespace(_private=1) }}", {}),
    # found by differential testing against jinja2
    ("{% if n | reject('none') %}a generator is true before it fails{% endif %}", {"n": 5}),
    ("{{ n | reject('none') | list }}", {"n": 5}),
    ("{{ 'abc' is odd }}", {}),
    ("{{ n[1:] }}", {"n": 5}),
    ("{{ d[1:] }}", {"d": {"a": 1}}),
    ("{{ 10 ** 400.0 }}", {}),
    ("{{ n | indent }}", {"n": 5}),
    ("{{ [{'a': 1}] | max }}", {}),
    ("{{ {'a': 1} > {'b': 2} }}", {}),
    ("{{ (1,) + 'a' }}", {}),
    ("{{ 'ab' * 2.0 }}", {}),
]


def render_snippet(source, variables):
    template = chat_template_utils._compile_jinja_template(source)
    return template.render(**variables)


def snippet_cases():
    cases = []
    for source, variables in SNIPPETS:
        case = {"template": source, "variables": variables}
        try:
            case["output"] = render_snippet(source, variables)
        except Exception as error:  # noqa: BLE001 - the exception is the expected result
            case["error"] = {"type": type(error).__name__, "message": str(error)}
        cases.append(case)
    return cases


def render(template, conversation, add_generation_prompt, tools, documents, variables, with_generation):
    messages = _normalize_chat_messages(conversation)
    rendered, indices = render_jinja_template(
        conversations=[messages],
        tools=tools,
        documents=documents,
        chat_template=template,
        return_assistant_tokens_mask=with_generation,
        add_generation_prompt=add_generation_prompt,
        **variables,
    )
    return rendered[0], (indices[0] if with_generation else None)


def main():
    template_dir = FIXTURES / "templates"
    names = {path.stem for path in template_dir.glob("*.jinja")}
    listed = {entry[0] for entry in TEMPLATES}
    if names != listed:
        sys.exit(f"templates/ and TEMPLATES differ: {sorted(names ^ listed)}")
    cases = []
    for name, model, source, special_tokens, extra_cases in TEMPLATES:
        template = (template_dir / f"{name}.jinja").read_text(encoding="utf-8")
        with_generation = "generation" in template and "endgeneration" in template
        for kind in COMMON_CASES + extra_cases:
            conversation, add_generation_prompt, tools, documents, extra = case_inputs(kind)
            variables = {**special_tokens, **extra}  # extra variables override special tokens, as in transformers
            case = {
                "template": name,
                "case": kind,
                "conversation": conversation,
                "add_generation_prompt": add_generation_prompt,
                "tools": tools is not None,
                "documents": documents is not None,
                "variables": variables,
            }
            try:
                text, generation = render(template, CONVERSATIONS[conversation], add_generation_prompt, tools,
                                          documents, variables, with_generation)
                case["output"] = text
                if generation is not None:
                    case["generation"] = [list(span) for span in generation]
            except Exception as error:  # noqa: BLE001 - the exception is the expected result
                case["error"] = {"type": type(error).__name__, "message": str(error)}
            cases.append(case)
    fixture = {
        "transformers_version": transformers.__version__,
        "jinja2_version": jinja2.__version__,
        "now": FIXED_NOW.isoformat(),
        "templates": [{"name": n, "model": m, "source": s} for n, m, s, _, _ in TEMPLATES],
        "conversations": CONVERSATIONS,
        "tools": TOOLS,
        "documents": DOCUMENTS,
        "cases": cases,
    }
    out = FIXTURES / "expected.json"
    out.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum("error" in c for c in cases)
    print(f"{len(TEMPLATES)} templates, {len(cases)} cases ({errors} raise) -> {out.relative_to(ROOT)}")

    snippets = snippet_cases()
    out = FIXTURES / "snippets.json"
    out.write_text(
        json.dumps({"transformers_version": transformers.__version__, "jinja2_version": jinja2.__version__,
                    "now": FIXED_NOW.isoformat(), "cases": snippets}, ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8")
    errors = sum("error" in c for c in snippets)
    print(f"{len(snippets)} language snippets ({errors} raise) -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
