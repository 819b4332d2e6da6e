"""zoo.chat_template against transformers 5.24's apply_chat_template (the oracle), on the same files.

The templates are the published ones of popular chat models (tests/data/chat_templates, each with a note naming its
model and source). For each, a small byte-level BPE tokenizer that knows the template's special tokens is saved by
hand with the template stored in tokenizer_config.json or in chat_template.jinja, loaded by transformers and by zoo
(``zoo.AutoTokenizer`` + ``load_chat_template``), and every conversation of a grid (system/user/assistant turns,
tool calls and results, reasoning, multimodal content, bad roles) is rendered with every option of a grid
(generation prompt, continue_final_message, tools, documents, template variables): both libraries must give the same
string and the same token ids, or both refuse. Then batches and padding, assistant masks, where templates are read
from and written to, which template is chosen, functions as tools, and bad arguments. The sandbox and the tool
schemas have their own tests in tests/chat/.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as datetime_module
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import zoo
from tests.chat.test_tools import Toolbox, current_weather, pick
from zoo import chat_template as ct
from zoo.chat import sandbox
from zoo.errors import ChatTemplateError, TokenizerError
from zoo.hub.files import LocalFolder

transformers = pytest.importorskip("transformers")
from transformers.utils import chat_template_utils as hf_chat_utils  # noqa: E402

DATA = Path(__file__).parent / "data" / "chat_templates"
TEMPLATES = sorted(p.stem for p in DATA.glob("*.jinja"))
FROZEN_NOW = datetime_module.datetime(2025, 3, 14, 15, 9, 26)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
           "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<s>", "</s>", "<unk>", "<pad>", "[INST]",
           "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]",
           "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
           "<|start_of_role|>", "<|end_of_role|>", "<|pad|>", "<tool_call>", "</tool_call>", "<think>", "</think>",
           "<tool_response>", "</tool_response>"]
# The special tokens each model's tokenizer_config.json names (pad added where the model has none, for padding)
_QWEN = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"}
_LLAMA = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<|end_of_text|>", "unk_token": "<unk>"}
_MISTRAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}
TOKENS = {
    "qwen2_5_instruct": _QWEN, "qwen2_5_assistant_masks": _QWEN, "qwen3": _QWEN,
    "llama3_1_instruct": _LLAMA, "llama3_2_instruct": _LLAMA,
    "mistral_7b_instruct_v0_3": _MISTRAL, "mixtral_8x7b_instruct_v0_1": _MISTRAL, "zephyr_7b_beta": _MISTRAL,
    "gemma_it": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "phi3_mini_instruct": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"},
    "granite_4_0": {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<|pad|>", "unk_token": "<unk>"},
}
# Conversations each template must refuse with its own raise_exception
MUST_REFUSE = {"gemma_it": "system-first", "mixtral_8x7b_instruct_v0_1": "system-first",
               "mistral_7b_instruct_v0_3": "user-user", "llama3_1_instruct": "two-tool-calls"}

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city — e.g. Zürich",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"}}, "required": ["city"]}}}
DOCUMENTS = [{"title": "Weather report", "text": "Paris: sunny, 24°C."}, {"title": "Notes", "text": "Bring <sunglasses> & water"}]
CALL = {"id": "call00001", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}


@dataclasses.dataclass
class Message:
    role: str
    content: str


CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello!"}],
    "user-assistant-user": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi, how can I help?"},
                            {"role": "user", "content": "  What is the weather in Paris?  "}],
    "system-first": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello!"},
                     {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Weather?"}],
    "assistant-last": [{"role": "user", "content": "Write a haiku"}, {"role": "assistant", "content": "Autumn moonlight "}],
    "tool-round-trip": [{"role": "user", "content": "Weather in Paris?"},
                        {"role": "assistant", "content": None, "tool_calls": [CALL]},
                        {"role": "tool", "tool_call_id": "call00001", "name": "get_weather", "content": "sunny, 24C"},
                        {"role": "assistant", "content": "It is sunny."}],
    "two-tool-calls": [{"role": "user", "content": "Weather in Paris and Rome?"},
                       {"role": "assistant", "tool_calls": [CALL, {**CALL, "id": "call00002", "function": {
                           "name": "get_weather", "arguments": {"city": "Rome"}}}]}],
    "reasoning": [{"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."},
                  {"role": "user", "content": "And 3+3?"}],
    "multimodal": [{"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "text", "text": "this"}]}],
    "unicode": [{"role": "user", "content": "Grüße 👋 中文 \"quotes\" {braces} <tags>"}],
    "dataclasses": [Message("user", "Hello from a dataclass"), Message("assistant", "Hi")],
    "user-user": [{"role": "user", "content": "One"}, {"role": "user", "content": "Two"}],
    "unknown-role": [{"role": "narrator", "content": "Once upon a time"}, {"role": "user", "content": "Go on"}],
}
OPTIONS = {
    "plain": {},
    "generation-prompt": {"add_generation_prompt": True},
    "continue": {"continue_final_message": True},
    "tools": {"tools": [WEATHER]},
    "tools+prompt": {"tools": [WEATHER], "add_generation_prompt": True},
    "documents": {"documents": DOCUMENTS},
    "tools+documents": {"tools": [WEATHER], "documents": DOCUMENTS, "add_generation_prompt": True},
    "no-thinking": {"enable_thinking": False, "add_generation_prompt": True},
    "date-string": {"date_string": "3 Mar 2025"},
    "builtin-tools": {"builtin_tools": ["brave_search", "wolfram_alpha"], "tools": [WEATHER]},
    "bos-override": {"bos_token": "<s>", "eos_token": "</s>"},
}


class ChatTokenizer:
    """The duck-typed tokenizer apply_chat_template takes: zoo's Tokenizer plus the template it loaded."""

    def __init__(self, tokenizer, template):
        self.tokenizer, self.chat_template, self.special_tokens = tokenizer, template, dict(tokenizer.special_tokens)

    def __call__(self, *args, **kwargs):
        return self.tokenizer(*args, **kwargs)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """strftime_now reads the same instant in both libraries (Llama 3.2 prints today's date)."""

    class Frozen(datetime_module.datetime):
        @classmethod
        def now(cls, tz=None):
            return FROZEN_NOW

    monkeypatch.setattr(hf_chat_utils, "datetime", Frozen)
    monkeypatch.setattr(sandbox, "datetime", Frozen)


@pytest.fixture(scope="module")
def backend_json(tmp_path_factory):
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE

    backend = Tokenizer(BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = ["Hello! Hi, how can I help? What is the weather in Paris and Rome?", "You are a helpful assistant.",
              "Get the current weather in a city. It is sunny.", "system user assistant tool function arguments"] * 20
    trainer = trainers.BpeTrainer(vocab_size=420, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(corpus, trainer)
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    return backend.to_str()


def write_tokenizer(folder: Path, backend_json: str, tokens: dict, template=None, in_file: bool = False) -> Path:
    """tokenizer.json + tokenizer_config.json (+ chat_template.jinja) + a gpt2 config.json, as a Hub repo holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(backend_json, encoding="utf-8")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", **tokens}
    if template is not None and in_file:
        (folder / ct.CHAT_TEMPLATE_FILE).write_text(template, encoding="utf-8")
    elif template is not None:
        config["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    transformers.GPT2Config(vocab_size=len(SPECIAL) + 420).save_pretrained(folder)
    return folder


def both_tokenizers(folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.AutoTokenizer.from_pretrained(str(folder))
    tok = zoo.AutoTokenizer.from_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    ours = ChatTokenizer(tok, ct.load_chat_template(LocalFolder(folder), config))
    assert ours.special_tokens == theirs.special_tokens_map  # the template variables agree before any rendering
    return ours, theirs


@pytest.fixture(scope="module", params=TEMPLATES)
def pair(request, backend_json, tmp_path_factory):
    """(template name, zoo tokenizer, transformers tokenizer); half the templates live in tokenizer_config.json,
    half in chat_template.jinja, so both layouts are read by both libraries."""
    name = request.param
    template = (DATA / f"{name}.jinja").read_text(encoding="utf-8")
    folder = write_tokenizer(tmp_path_factory.mktemp(name), backend_json, TOKENS[name], template,
                             in_file=TEMPLATES.index(name) % 2 == 1)
    ours, theirs = both_tokenizers(folder)
    assert ours.chat_template == theirs.chat_template == template
    return name, ours, theirs


def as_lists(value):
    return value.tolist() if hasattr(value, "tolist") else value


def outcome(fn):
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - the oracle's errors are compared, whatever their type
        return None, exc


def assert_same_outcome(got, expected, what):
    (value, error), (hf_value, hf_error) = got, expected
    if hf_error is not None:
        assert isinstance(error, ChatTemplateError), f"{what}: transformers raised {hf_error!r}, zoo gave {value!r} {error!r}"
        if isinstance(hf_error, hf_chat_utils.jinja2.exceptions.TemplateError):
            assert str(hf_error) in str(error), what  # the template's own message reaches the user
        return False
    assert error is None, f"{what}: zoo raised {error!r}, transformers gave {hf_value!r}"
    return True


def test_every_template_renders_and_tokenizes_like_transformers(pair):
    name, ours, theirs = pair
    rendered, refused = 0, set()
    for conv_name, conversation in CONVERSATIONS.items():
        for opt_name, options in OPTIONS.items():
            what = f"{name} / {conv_name} / {opt_name}"
            before = copy.deepcopy(conversation)
            got = outcome(lambda: ct.apply_chat_template(ours, copy.deepcopy(conversation), tokenize=False, **options))
            expected = outcome(lambda: theirs.apply_chat_template(copy.deepcopy(conversation), tokenize=False, **options))
            if not assert_same_outcome(got, expected, what):
                refused.add(conv_name)
                continue
            assert got[0] == expected[0], what
            rendered += 1
            ids = ct.apply_chat_template(ours, conversation, return_dict=False, **options)
            assert ids == theirs.apply_chat_template(conversation, return_dict=False, **options), what
            assert conversation == before, f"{what}: the caller's messages changed"
            if opt_name in ("plain", "tools+documents"):
                enc, hf_enc = (ct.apply_chat_template(ours, conversation, **options),
                               theirs.apply_chat_template(conversation, **options))  # return_dict defaults to True
                assert dict(enc) == dict(hf_enc) and set(enc) == {"input_ids", "attention_mask"}, what
                pt, hf_pt = (ct.apply_chat_template(ours, conversation, return_tensors="pt", **options),
                             theirs.apply_chat_template(conversation, return_tensors="pt", **options))
                assert set(pt) == set(hf_pt) and all(torch.equal(pt[k], hf_pt[k]) for k in hf_pt), what
    assert rendered >= 40, f"{name}: only {rendered} renderings succeeded"
    if name in MUST_REFUSE:
        assert MUST_REFUSE[name] in refused, f"{name} should refuse {MUST_REFUSE[name]}"


def test_batches_pad_and_truncate_like_transformers(pair):
    name, ours, theirs = pair
    batch = [CONVERSATIONS["user"], CONVERSATIONS["user-assistant-user"], CONVERSATIONS["assistant-last"]]
    for options in ({"tokenize": False}, {"padding": True, "return_tensors": "pt"},
                    {"padding": True, "return_tensors": "pt", "tokenizer_kwargs": {"padding_side": "left"}},
                    {"truncation": True, "max_length": 12}, {"padding": "max_length", "max_length": 64},
                    {"return_dict": False}, {"add_generation_prompt": True, "padding": True, "return_tensors": "np"}):
        got = ct.apply_chat_template(ours, batch, **options)
        expected = theirs.apply_chat_template(batch, **options)
        if isinstance(expected, (list, str)):
            assert got == expected, (name, options)
        else:
            assert set(got) == set(expected), (name, options)
            for key in expected:
                assert type(got[key]) is type(expected[key]) and as_lists(got[key]) == as_lists(expected[key]), key


@pytest.mark.parametrize("options", [{}, {"return_tensors": "pt"}, {"truncation": True},
                                     {"tools": [WEATHER], "add_generation_prompt": True}])
@pytest.mark.parametrize("batched", [False, True])
def test_assistant_masks_match_transformers(backend_json, tmp_path, options, batched):
    template = (DATA / "qwen2_5_assistant_masks.jinja").read_text()
    ours, theirs = both_tokenizers(write_tokenizer(tmp_path, backend_json, _QWEN, template))
    conversation = CONVERSATIONS["tool-round-trip"]
    arg = [conversation, CONVERSATIONS["user-assistant-user"]] if batched else conversation
    if batched:
        options = {**options, "padding": True}
    if options.get("truncation"):  # cut inside the first assistant turn, so a span loses its end
        full = ct.apply_chat_template(ours, conversation, return_assistant_tokens_mask=True)["assistant_masks"]
        options = {**options, "max_length": full.index(1) + 2}
    got = ct.apply_chat_template(ours, copy.deepcopy(arg), return_assistant_tokens_mask=True, **options)
    expected = theirs.apply_chat_template(copy.deepcopy(arg), return_assistant_tokens_mask=True, **options)
    assert set(got) == set(expected) == {"input_ids", "attention_mask", "assistant_masks"}
    for key in expected:
        assert type(got[key]) is type(expected[key]) and as_lists(got[key]) == as_lists(expected[key]), key
    masks = torch.as_tensor(got["assistant_masks"])
    assert 0 < int(masks.sum()) < masks.numel()  # the assistant turns, and only them


def test_template_without_generation_block_gives_zero_masks(pair):
    name, ours, theirs = pair
    conversation = CONVERSATIONS["user-assistant-user"] if name not in ("gemma_it",) else CONVERSATIONS["user"]
    got = ct.apply_chat_template(ours, conversation, return_assistant_tokens_mask=True)
    expected = theirs.apply_chat_template(conversation, return_assistant_tokens_mask=True)
    assert got["assistant_masks"] == expected["assistant_masks"]
    if not sandbox.has_generation_block(ours.chat_template):
        assert set(got["assistant_masks"]) == {0}


def test_render_chat_template_returns_generation_spans():
    template = "{% for m in messages %}{{ m.role }}: {% generation %}{{ m.content }}{% endgeneration %}{{ '\\n' }}{% endfor %}"
    texts, spans = ct.render_chat_template(template, [[{"role": "user", "content": "ab"}], []],
                                           return_assistant_tokens_mask=True)
    assert texts == ["user: ab\n", ""] and spans == [[(6, 8)], []]
    assert ct.render_chat_template(template, [[{"role": "user", "content": "ab"}]]) == (["user: ab\n"], None)
    expected, hf_spans = hf_chat_utils.render_jinja_template([[{"role": "user", "content": "ab"}], []],
                                                             chat_template=template, return_assistant_tokens_mask=True)
    assert (texts, spans) == (expected, hf_spans)


# --- where templates are read from and written to -------------------------------------------------------------------

SIMPLE = "{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}"
TOOL_USE = "TOOLS {{ tools | length }} {% for m in messages %}{{ m.content }}{% endfor %}"
LAYOUTS = {
    "config-string": {"config": SIMPLE},
    "config-named": {"config": [{"name": "default", "template": SIMPLE}, {"name": "tool_use", "template": TOOL_USE}]},
    "jinja-file": {"files": {ct.CHAT_TEMPLATE_FILE: SIMPLE}},
    "jinja-file-crlf": {"files": {ct.CHAT_TEMPLATE_FILE: SIMPLE.replace(";", ";\r\n")}},
    "jinja-file-wins-over-config": {"config": "stale", "files": {ct.CHAT_TEMPLATE_FILE: SIMPLE}},
    "jinja-and-additional": {"files": {ct.CHAT_TEMPLATE_FILE: SIMPLE, "additional_chat_templates/tool_use.jinja": TOOL_USE,
                                       "additional_chat_templates/rag.jinja": "RAG"}},
    "additional-only": {"config": "stale", "files": {"additional_chat_templates/tool_use.jinja": TOOL_USE}},
    "none": {},
}


def _layout_folder(tmp_path, backend_json, layout):
    spec = LAYOUTS[layout]
    folder = write_tokenizer(tmp_path / layout, backend_json, _QWEN, spec.get("config"))
    for name, text in spec.get("files", {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


@pytest.mark.parametrize("layout", LAYOUTS)
def test_load_chat_template_finds_what_transformers_finds(tmp_path, backend_json, layout):
    folder = _layout_folder(tmp_path, backend_json, layout)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = transformers.AutoTokenizer.from_pretrained(str(folder)).chat_template
    assert ct.load_chat_template(LocalFolder(folder), config) == expected
    assert (expected is None) == (layout == "none")


class FakeHubRepo:
    """A Hub repo as zoo.hub.repo.HubRepo presents it: a file list, and files fetched on demand."""

    def __init__(self, folder: Path):
        self.folder_on_disk, self.fetched = folder, []

    def files(self):
        return sorted(p.relative_to(self.folder_on_disk).as_posix() for p in self.folder_on_disk.rglob("*") if p.is_file())

    def exists(self, name):
        return name in self.files()

    def require(self, name):
        self.fetched.append(name)
        return self.folder_on_disk / name


def test_load_chat_template_lists_named_templates_of_a_hub_repo(tmp_path, backend_json):
    folder = _layout_folder(tmp_path, backend_json, "jinja-and-additional")
    (folder / "additional_chat_templates" / "nested").mkdir()
    (folder / "additional_chat_templates" / "nested" / "deep.jinja").write_text("not listed: not directly in the folder")
    repo = FakeHubRepo(folder)
    assert ct.load_chat_template(repo, {}) == {"default": SIMPLE, "tool_use": TOOL_USE, "rag": "RAG"}
    assert sorted(repo.fetched) == ["additional_chat_templates/rag.jinja", "additional_chat_templates/tool_use.jinja",
                                    "chat_template.jinja"]


def test_legacy_chat_template_json_is_read_when_nothing_else_is(tmp_path, backend_json):
    folder = write_tokenizer(tmp_path, backend_json, _QWEN)
    (folder / ct.LEGACY_CHAT_TEMPLATE_FILE).write_text(json.dumps({"chat_template": SIMPLE}))
    assert ct.load_chat_template(LocalFolder(folder), {}) == SIMPLE
    # transformers' tokenizer ignores the processor's legacy file: zoo reads it only where nothing else exists
    assert ct.load_chat_template(LocalFolder(folder), {"chat_template": TOOL_USE}) == TOOL_USE
    (folder / ct.LEGACY_CHAT_TEMPLATE_FILE).write_text(json.dumps({"template": SIMPLE}))
    with pytest.raises(ChatTemplateError, match="no 'chat_template' key"):
        ct.load_chat_template(LocalFolder(folder), {})


@pytest.mark.parametrize("value", [5, [{"name": "default"}], [{"name": 1, "template": "x"}], {"default": "x"}])
def test_malformed_chat_template_in_config_is_a_clear_error(tmp_path, value):
    with pytest.raises(ChatTemplateError, match="tokenizer_config.json must be a Jinja string or a list"):
        ct.load_chat_template(LocalFolder(tmp_path), {"chat_template": value})


@pytest.mark.parametrize("template", [SIMPLE, {"default": SIMPLE, "tool_use": TOOL_USE}, {"tool_use": TOOL_USE}])
def test_chat_template_files_are_what_transformers_saves_and_reads(tmp_path, backend_json, template):
    hf_dir, zoo_dir = tmp_path / "hf", write_tokenizer(tmp_path / "zoo", backend_json, _QWEN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = transformers.AutoTokenizer.from_pretrained(str(zoo_dir))
        tok.chat_template = copy.deepcopy(template)
        tok.save_pretrained(str(hf_dir))
        saved = {p.relative_to(hf_dir).as_posix(): p.read_text() for p in hf_dir.rglob("*.jinja")}
        assert ct.chat_template_files(template) == saved
        assert "chat_template" not in json.loads((hf_dir / "tokenizer_config.json").read_text())
        for name, text in ct.chat_template_files(template).items():
            (zoo_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (zoo_dir / name).write_text(text, encoding="utf-8")
        assert transformers.AutoTokenizer.from_pretrained(str(zoo_dir)).chat_template == template
    assert ct.load_chat_template(LocalFolder(zoo_dir), {}) == template
    assert ct.chat_template_files(None) == {}


@pytest.mark.parametrize("bad", [{"../escape": "x"}, {"a/b": "x"}, {"": "x"}, {"ok": 3}, 42])
def test_chat_template_files_refuses_unsafe_names_and_non_templates(bad):
    with pytest.raises(ChatTemplateError):
        ct.chat_template_files(bad)


def test_select_chat_template_chooses_as_transformers_does(tmp_path, backend_json):
    ours, theirs = both_tokenizers(write_tokenizer(tmp_path, backend_json, _QWEN))
    named = {"default": SIMPLE, "tool_use": TOOL_USE, "rag": "RAG"}
    cases = [(named, None, None), (named, None, [WEATHER]), (named, "rag", None), (named, "rag", [WEATHER]),
             (named, "{{ 'inline' }}", None), ({"tool_use": TOOL_USE}, None, [WEATHER]), (SIMPLE, None, None),
             (SIMPLE, "tool_use", None), ({"tool_use": TOOL_USE}, None, None), (None, None, None), (None, SIMPLE, None)]
    for template, choice, tools in cases:
        theirs.chat_template = template
        got = outcome(lambda: ct.select_chat_template(template, choice, tools))
        expected = outcome(lambda: theirs.get_chat_template(choice, tools))
        if assert_same_outcome(got, expected, (template, choice, tools)):
            assert got[0] == expected[0]
    with pytest.raises(ChatTemplateError, match="none is named 'default'.*'tool_use'"):
        ct.select_chat_template({"tool_use": TOOL_USE})
    with pytest.raises(ChatTemplateError, match="no chat template"):
        ct.apply_chat_template(ChatTokenizer(ours.tokenizer, None), CONVERSATIONS["user"])


# --- tools given as Python functions, and refusals of bad input -----------------------------------------------------


def test_functions_as_tools_render_like_transformers(pair):
    name, ours, theirs = pair
    tools = [current_weather, pick, Toolbox().lookup]
    conversation = CONVERSATIONS["user"]
    got = outcome(lambda: ct.apply_chat_template(ours, conversation, tools=tools, tokenize=False, add_generation_prompt=True))
    expected = outcome(lambda: theirs.apply_chat_template(conversation, tools=tools, tokenize=False, add_generation_prompt=True))
    if assert_same_outcome(got, expected, name):
        assert got[0] == expected[0]
        if "tools" in ours.chat_template:
            assert "Get the current weather in a city." in got[0] or name == "mistral_7b_instruct_v0_3"


@pytest.mark.parametrize("conversation, options, match", [
    (CONVERSATIONS["assistant-last"], {"continue_final_message": True, "add_generation_prompt": True}, "cannot be used together"),
    (CONVERSATIONS["assistant-last"], {"return_assistant_tokens_mask": True, "return_dict": False}, "return_dict=True"),
    (CONVERSATIONS["assistant-last"], {"return_assistant_tokens_mask": True, "tokenize": False}, "tokenize=True"),
    ([], {}, "empty conversation"),
    (["hello"], {}, "must be dicts"),
    (CONVERSATIONS["user"], {"tools": ["get_weather"]}, "JSON schema dict or a function"),
    (CONVERSATIONS["user"], {"documents": ["a text"]}, "documents must be a list of dicts"),
    (CONVERSATIONS["user"], {"sanitize_control_tokens": True}, "not supported by zoo"),
    ([{"role": "user"}], {"continue_final_message": True}, "no 'content' to continue"),
    ([{"role": "user", "content": "x", "thinking": "y"}], {"continue_final_message": "thinking"}, "never reads that"),
])
def test_bad_arguments_are_clear_errors(tmp_path, backend_json, conversation, options, match):
    ours, theirs = both_tokenizers(write_tokenizer(tmp_path, backend_json, _QWEN, SIMPLE))
    with pytest.raises(ChatTemplateError, match=match) as info:
        ct.apply_chat_template(ours, copy.deepcopy(conversation), **options)
    assert isinstance(info.value, TokenizerError) and isinstance(info.value, ValueError)
    if not options.get("sanitize_control_tokens"):
        with pytest.raises(Exception):  # transformers refuses the same input
            theirs.apply_chat_template(copy.deepcopy(conversation), **options)


def test_tokenizer_errors_pass_through(tmp_path, backend_json):
    ours, _ = both_tokenizers(write_tokenizer(tmp_path, backend_json, _QWEN, SIMPLE))
    with pytest.raises(TokenizerError, match="return_tensors"):
        ct.apply_chat_template(ours, CONVERSATIONS["user"], return_tensors="tf")


def test_syntax_errors_name_the_line():
    with pytest.raises(ChatTemplateError, match=r"not valid Jinja.*template line 2"):
        ct.render_chat_template("ok\n{% if %}", [[]])


def test_import_needs_neither_jinja2_nor_torch():
    code = ("import sys, zoo.chat_template; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('jinja2', 'torch')], 'imported too early'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_jinja2_the_error_says_what_to_install():
    code = ("import sys; sys.modules['jinja2'] = None\n"
            "from zoo.chat_template import render_chat_template\n"
            "from zoo.errors import MissingDependencyError\n"
            "try:\n    render_chat_template('{{ 1 }}', [[]])\n"
            "except MissingDependencyError as exc:\n    assert 'pip install' in str(exc) and 'jinja2' in str(exc)\n"
            "else:\n    raise SystemExit('rendered without jinja2')")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tokenizer_apply_chat_template_delegates_here(tmp_path, backend_json):
    """zoo.Tokenizer.apply_chat_template (zoo/tokenization/base.py) gives what this module gives."""
    template = (DATA / "qwen2_5_instruct.jinja").read_text()
    folder = write_tokenizer(tmp_path, backend_json, _QWEN, template, in_file=True)
    tok, (ours, theirs) = zoo.AutoTokenizer.from_pretrained(folder), both_tokenizers(folder)
    conversation = CONVERSATIONS["tool-round-trip"]
    for options in ({"tokenize": False}, {}, {"return_dict": False, "tools": [WEATHER]}):
        assert tok.apply_chat_template(conversation, **options) == ct.apply_chat_template(ours, conversation, **options)
