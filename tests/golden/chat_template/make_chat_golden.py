#!/usr/bin/env python3
"""Renders chat templates with Jinja2 exactly as Hugging Face transformers does (sandboxed environment,
trim_blocks and lstrip_blocks, raise_exception) and writes chat_golden.json for chat_template_test.cpp.

Template sources:
  qwen3   - data/tokenizers/qwen3/tokenizer_config.json (bundled; Apache-2.0)
  phi3    - tokenizer.chat_template of llama.cpp's models/ggml-vocab-phi-3.gguf (MIT)
  others  - the chat_template strings as published in the models' tokenizer_config.json files
            (meta-llama/Meta-Llama-3-8B-Instruct, meta-llama/Llama-2-7b-chat-hf,
            mistralai/Mistral-7B-Instruct-v0.2, google/gemma-7b-it, google/gemma-3-270m-it (system
            handling part), HuggingFaceH4/zephyr-7b-beta, Qwen/Qwen2.5-0.5B-Instruct-style ChatML with a
            default system prompt, microsoft/Phi-3-mini-4k-instruct (later revision with system)).
            They were typed in here, not downloaded (no network), so they are the families' logic as
            published, and the C++ code is checked against Jinja2's rendering of exactly these strings.
Run: python3 tests/golden/chat_template/make_chat_golden.py  (needs jinja2; transformers is used if present)
"""
import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

TEMPLATES = {}
TEMPLATES["qwen3"] = json.load(open(os.path.join(ROOT, "data/tokenizers/qwen3/tokenizer_config.json")))["chat_template"]
TEMPLATES["phi3"] = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}"
    "{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}"
    "{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}")
TEMPLATES["phi3-system"] = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}")
TEMPLATES["llama3"] = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
TEMPLATES["llama2"] = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
TEMPLATES["mistral"] = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
TEMPLATES["gemma"] = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")
TEMPLATES["gemma3"] = (
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n")
TEMPLATES["zephyr"] = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")
TEMPLATES["chatml-default-system"] = (
    "{%- if messages[0]['role'] == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\") %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n")
TEMPLATES["chatml"] = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

SPECIAL = {  # bos, eos as the families' tokenizers define them
    "qwen3": ("", "<|im_end|>"), "chatml": ("", "<|im_end|>"), "chatml-default-system": ("", "<|im_end|>"),
    "phi3": ("<s>", "<|endoftext|>"), "phi3-system": ("<s>", "<|endoftext|>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"), "llama2": ("<s>", "</s>"), "mistral": ("<s>", "</s>"),
    "gemma": ("<bos>", "<eos>"), "gemma3": ("<bos>", "<eos>"), "zephyr": ("<s>", "</s>"),
}

CONVERSATIONS = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "  Bye now  "}],
    "answered": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}],
    "thinking": [{"role": "user", "content": "Why?"},
                 {"role": "assistant", "content": "<think>\nbecause\n</think>\n\nIt is so."},
                 {"role": "user", "content": "Sure?"}],
    "multiline": [{"role": "user", "content": "line one\nline two\n"},
                  {"role": "assistant", "content": "\nok\n"}],
    "tool": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Checking."},
             {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "20C"}],
}
# The typed Qwen2.5-style template above leaves out its tool branch, so it is not asked to render tools.
SKIP = {("chatml-default-system", "tool")}


def render(template, bos, eos, messages, add_generation_prompt):
    try:  # the function transformers itself uses, when available
        from transformers.utils.chat_template_utils import render_jinja_template
        out, _ = render_jinja_template(conversations=[messages], chat_template=template,
                                       add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos)
        return out[0]
    except ImportError:
        pass

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            bos_token=bos, eos_token=eos)


def main():
    cases = []
    for name, template in TEMPLATES.items():
        bos, eos = SPECIAL[name]
        for conv_name, messages in CONVERSATIONS.items():
            if (name, conv_name) in SKIP:
                continue
            for gen in (True, False):
                case = {"template": name, "conversation": conv_name, "add_generation_prompt": gen}
                try:
                    case["expected"] = render(template, bos, eos, messages, gen)
                except Exception as e:  # raise_exception in the template: C++ must throw too
                    case["error"] = str(e)
                cases.append(case)
    golden = {"templates": TEMPLATES, "special": {k: {"bos": v[0], "eos": v[1]} for k, v in SPECIAL.items()},
              "conversations": CONVERSATIONS, "cases": cases}
    with open(os.path.join(HERE, "chat_golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
    print(f"{len(cases)} cases, {sum('error' in c for c in cases)} expected errors")


if __name__ == "__main__":
    main()
