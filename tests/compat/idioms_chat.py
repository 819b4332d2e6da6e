"""Chat-template idioms on the templates of published models (tests/data/chat_templates/ and
tests/compat/data/chat_templates/, read from tokenizer_config.json's ``chat_template`` or from chat_template.jinja):
rendered strings, tokenized output in each return form, generation prompts, system defaults, tools, documents,
templates that raise on a bad role, the ``chat_template`` attribute, and save_pretrained round trips into the other
library."""

from __future__ import annotations

import torch

from tests.compat.checkpoints import CHAT_TEMPLATES, chat_template
from tests.compat.idiom import idiom, raised

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Tell me a joke."}
CONVERSATION = [
    {"role": "user", "content": "Hello world! "},
    {"role": "assistant", "content": "  The capital of France is Paris."},
    {"role": "user", "content": "What is the weather today?"},
]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather today in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "café, 中文 or Paris"},
                                                    "days": {"type": "integer"}}, "required": ["city"]}}}]
TOOL_TURNS = [
    {"role": "user", "content": "What is the weather today in Paris?"},
    {"role": "assistant", "tool_calls": [{"type": "function", "id": "call12345", "function": {
        "name": "get_weather", "arguments": {"city": "Paris", "days": 1}}}]},
    {"role": "tool", "tool_call_id": "call12345", "content": "sunny, 22 degrees"},
]
#: templates that accept a system message (gemma and mixtral raise on one)
WITH_SYSTEM = [name for name in CHAT_TEMPLATES if name not in ("gemma", "mixtral")]
#: templates with a tools branch
WITH_TOOLS = ["qwen2_5", "qwen3", "llama3_1", "llama3_2", "mistral_v0_3", "granite"]


def _tok(lib, ckpt, name):
    return lib.AutoTokenizer.from_pretrained(ckpt.chat[name])


def _render(lib, ckpt, name):
    tok = _tok(lib, ckpt, name)
    messages = ([SYSTEM] if name in WITH_SYSTEM else []) + CONVERSATION
    return {"prompt": tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
            "plain": tok.apply_chat_template(messages[:-1], tokenize=False)}


def _template_idiom(name: str):
    def render(lib, ckpt):
        return _render(lib, ckpt, name)

    render.__name__ = render.__qualname__ = f"chat_template_{name}_renders"
    return idiom(render)


for _name in CHAT_TEMPLATES:
    _template_idiom(_name)


@idiom
def chat_template_system_message_default_when_absent(lib, ckpt):
    out = {}
    for name in ("qwen2", "qwen2_5"):
        out[name] = _tok(lib, ckpt, name).apply_chat_template(CONVERSATION[:1], tokenize=False,
                                                              add_generation_prompt=True)
    return out


@idiom
def chat_template_tokenize_true_default_return(lib, ckpt):
    tok = _tok(lib, ckpt, "chatml")
    out = tok.apply_chat_template([SYSTEM] + CONVERSATION, add_generation_prompt=True)
    return {"is_list": isinstance(out, list), "out": out}


@idiom
def chat_template_tokenize_return_dict_false_list_of_ids(lib, ckpt):
    tok = _tok(lib, ckpt, "llama3")
    return tok.apply_chat_template(CONVERSATION, tokenize=True, return_dict=False, add_generation_prompt=True)


@idiom
def chat_template_return_dict_and_tensors(lib, ckpt):
    tok = _tok(lib, ckpt, "qwen2")
    out = tok.apply_chat_template(CONVERSATION, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    return dict(out)


@idiom
def chat_template_return_tensors_without_dict(lib, ckpt):
    tok = _tok(lib, ckpt, "zephyr")
    out = tok.apply_chat_template(CONVERSATION, add_generation_prompt=True, return_tensors="pt")
    return dict(out) if hasattr(out, "keys") else out


@idiom
def chat_template_batch_of_conversations(lib, ckpt):
    tok = _tok(lib, ckpt, "chatml")
    conversations = [CONVERSATION, CONVERSATION[:1], [SYSTEM, CONVERSATION[0]]]
    return {"text": tok.apply_chat_template(conversations, tokenize=False, add_generation_prompt=True),
            "ids": dict(tok.apply_chat_template(conversations, add_generation_prompt=True, padding=True,
                                                return_dict=True, return_tensors="pt"))}


@idiom
def chat_template_with_tools(lib, ckpt):
    out = {}
    for name in WITH_TOOLS:
        tok = _tok(lib, ckpt, name)
        out[name] = {"ask": tok.apply_chat_template(TOOL_TURNS[:1], tools=TOOLS, tokenize=False,
                                                    add_generation_prompt=True),
                     "turns": tok.apply_chat_template(TOOL_TURNS, tools=TOOLS, tokenize=False,
                                                      add_generation_prompt=True)}
    return out


@idiom
def chat_template_date_string_and_template_variables(lib, ckpt):
    out = {}
    for name in ("llama3_1", "llama3_2"):
        tok = _tok(lib, ckpt, name)
        out[name] = {"tools": tok.apply_chat_template([SYSTEM] + TOOL_TURNS, tools=TOOLS, tokenize=False,
                                                      add_generation_prompt=True, date_string="26 Jul 2024"),
                     "plain": tok.apply_chat_template(CONVERSATION, tokenize=False, date_string="01 Jan 2025")}
    qwen3 = _tok(lib, ckpt, "qwen3")
    out["qwen3_no_thinking"] = qwen3.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True,
                                                         enable_thinking=False)
    return out


@idiom
def chat_template_raises_on_a_bad_role(lib, ckpt):
    mixtral, mistral, gemma = (_tok(lib, ckpt, name) for name in ("mixtral", "mistral_v0_3", "gemma"))
    return {
        "mixtral_system": raised(lambda: mixtral.apply_chat_template([SYSTEM] + CONVERSATION, tokenize=False),
                                 "Conversation roles must alternate"),
        "mistral_two_users": raised(lambda: mistral.apply_chat_template(CONVERSATION[:1] * 2, tokenize=False),
                                    "conversation roles must alternate"),
        "mistral_bad_tool_id": raised(lambda: mistral.apply_chat_template(
            [TOOL_TURNS[0], {**TOOL_TURNS[1], "tool_calls": [{**TOOL_TURNS[1]["tool_calls"][0], "id": "short"}]}],
            tokenize=False), "Tool call IDs should be alphanumeric strings with length 9!"),
        "gemma_system": raised(lambda: gemma.apply_chat_template([SYSTEM] + CONVERSATION, tokenize=False),
                               "System role not supported"),
        "gemma_fine": gemma.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True),
    }


@idiom
def chat_template_attribute_set_then_saved_and_loaded_by_the_other_library(lib, ckpt):
    tok = lib.AutoTokenizer.from_pretrained(ckpt.gpt2_json)
    before = tok.chat_template
    tok.chat_template = _tok(lib, ckpt, "chatml").chat_template
    folder = ckpt.tmp()
    tok.save_pretrained(folder)
    other = ckpt.other(lib).AutoTokenizer.from_pretrained(folder)
    return {"before": before, "same": other.chat_template == tok.chat_template,
            "rendered": other.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)}


@idiom
def chat_template_from_jinja_file_saved_and_reloaded(lib, ckpt):
    tok = _tok(lib, ckpt, "llama3")
    folder = ckpt.tmp()
    tok.save_pretrained(folder)
    other = ckpt.other(lib).AutoTokenizer.from_pretrained(folder)
    same = lib.AutoTokenizer.from_pretrained(folder)
    return [t.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True) for t in (same, other)]


@idiom
def chat_template_with_documents(lib, ckpt):
    tok = _tok(lib, ckpt, "granite")
    documents = [{"doc_id": 1, "title": "Paris", "text": "The capital of France."},
                 {"doc_id": 2, "title": "Weather", "text": "Sunny today, café 中文."}]
    return {"text": tok.apply_chat_template(CONVERSATION, documents=documents, tokenize=False,
                                            add_generation_prompt=True),
            "ids": tok.apply_chat_template(CONVERSATION, documents=documents, return_dict=False),
            "both": tok.apply_chat_template(TOOL_TURNS[:1], documents=documents, tools=TOOLS, tokenize=False)}


@idiom
def chat_template_strftime_now_and_raise_exception_globals(lib, ckpt):
    tok = _tok(lib, ckpt, "chatml")
    tok.chat_template = ("{{ strftime_now('%Y') }}|{{ messages | length }}|{{ messages[0] | tojson }}"
                         "{% if messages | length > 2 %}"
                         "{{ raise_exception('too many messages: ' ~ messages | length) }}{% endif %}")
    return {"year": tok.apply_chat_template(CONVERSATION[:1], tokenize=False),
            "raises": raised(lambda: tok.apply_chat_template(CONVERSATION, tokenize=False), "too many messages: 3")}


@idiom
def chat_prompt_then_generate(lib, ckpt):
    tok = _tok(lib, ckpt, "chatml")
    model = lib.AutoModelForCausalLM.from_pretrained(ckpt.gpt2)
    torch.manual_seed(0)
    model.resize_token_embeddings(len(tok))  # the chat markers are tokens the checkpoint does not have
    inputs = tok.apply_chat_template(CONVERSATION, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=8, pad_token_id=tok.pad_token_id)
    return {"ids": out, "reply": tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)}


@idiom
def chat_template_assistant_tokens_mask(lib, ckpt):
    tok = _tok(lib, ckpt, "qwen2_5")
    tok.chat_template = chat_template("qwen2_5_masks")
    out = tok.apply_chat_template([SYSTEM] + CONVERSATION + [{"role": "assistant", "content": "Sunny."}],
                                  return_dict=True, return_assistant_tokens_mask=True)
    return dict(out)
