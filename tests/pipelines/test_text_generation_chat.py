"""Chats in text-generation against transformers' TextGenerationPipeline: the same chat-template prompts and the same
greedy replies, on a tiny GPT-2 given a ChatML template and on a tiny Llama with Llama 2's tokenizer and [INST]
template (tests/plugins/test_llama_tokenizer.py writes its files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

import zoo
from tests.pipelines.conftest import hf_pipeline, make_gpt2
from tests.plugins.test_llama_tokenizer import CHATML, write_folder
from zoo.errors import PipelineError

CHAT = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"}]
OTHER = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! I love Python"},
         {"role": "user", "content": "My name is Wolfgang and I live in Berlin"}]
PREFILL = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "My name is"}]
NEW = 6


def _set_tokenizer_config(folder: Path, **settings) -> None:
    path = folder / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))


def gpt2_chat(folder: Path) -> Path:
    """The pipeline tests' GPT-2 (256 positions) with a ChatML template and its eos as pad token (for batches)."""
    make_gpt2(folder, seed=7, positions=256)
    _set_tokenizer_config(folder, chat_template=CHATML, pad_token="<|endoftext|>")
    return folder


def llama_chat(folder: Path) -> Path:
    """A transformers LlamaForCausalLM (grouped-query attention, wide random weights) over Llama 2's tokenizer case."""
    write_folder(folder, "llama2")
    _set_tokenizer_config(folder, pad_token="</s>")
    vocab = len(transformers.AutoTokenizer.from_pretrained(str(folder)))
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                      bos_token_id=1, eos_token_id=2, pad_token_id=2, initializer_range=0.4)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def checkpoint(request, tmp_path_factory) -> Path:
    build = {"gpt2": gpt2_chat, "llama": llama_chat}[request.param]
    return build(tmp_path_factory.mktemp(f"{request.param}-chat"))


@pytest.fixture(scope="module")
def gen(checkpoint):
    return zoo.pipeline("text-generation", model=str(checkpoint))


def reference(folder: Path, *args, **kwargs):
    return hf_pipeline("text-generation", folder)(*args, max_new_tokens=NEW, do_sample=False, **kwargs)


def test_a_chat_gets_the_reply_transformers_gives(gen, checkpoint):
    got = gen(CHAT, max_new_tokens=NEW)
    assert got == reference(checkpoint, CHAT)
    assert got[0]["generated_text"][:-1] == CHAT and got[0]["generated_text"][-1]["role"] == "assistant"
    reply = gen(CHAT, max_new_tokens=NEW, return_full_text=False)
    assert reply == reference(checkpoint, CHAT, return_full_text=False)
    assert reply == [{"generated_text": got[0]["generated_text"][-1]["content"]}]


def test_the_prompt_is_the_chat_template_with_a_generation_prompt(gen, checkpoint):
    """The ids generation starts from are transformers' chat-template ids (no special tokens added on top)."""
    expected = transformers.AutoTokenizer.from_pretrained(str(checkpoint)).apply_chat_template(
        CHAT, add_generation_prompt=True, return_dict=False)
    ids = gen(CHAT, max_new_tokens=NEW, return_tensors=True)[0]["generated_token_ids"]
    assert ids[: len(expected)] == list(expected) and len(ids) == len(expected) + NEW
    assert ids == [int(i) for i in reference(checkpoint, CHAT, return_tensors=True)[0]["generated_token_ids"]]


def test_a_batch_of_chats_left_padded(gen, checkpoint):
    expected = reference(checkpoint, [CHAT, OTHER], batch_size=2)
    assert gen([CHAT, OTHER], max_new_tokens=NEW, batch_size=2) == expected
    assert gen([CHAT, OTHER], max_new_tokens=NEW) == expected  # one at a time: the same replies
    assert gen([CHAT, OTHER], max_new_tokens=NEW, batch_size=2, return_full_text=False) == \
        reference(checkpoint, [CHAT, OTHER], batch_size=2, return_full_text=False)


def test_a_generator_or_dataset_of_chats(gen):
    expected = gen([CHAT, OTHER], max_new_tokens=NEW)
    results = gen((chat for chat in [CHAT, OTHER]), max_new_tokens=NEW)
    assert not isinstance(results, list) and list(results) == expected  # lazily

    class Dataset:  # len and indexing, as a datasets.Dataset column
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return [CHAT, OTHER][i]

    assert gen(Dataset(), max_new_tokens=NEW) == expected


@pytest.mark.parametrize("chat, options", [(PREFILL, {}), (PREFILL, {"continue_final_message": True}),
                                           (CHAT, {"continue_final_message": True}),
                                           (PREFILL, {"continue_final_message": False})],
                         ids=["assistant-last", "explicit", "user-message", "new-turn-after-assistant"])
def test_continue_final_message(gen, checkpoint, chat, options):
    got = gen(chat, max_new_tokens=NEW, **options)
    assert got == reference(checkpoint, chat, **options)
    continued = options.get("continue_final_message", chat[-1]["role"] == "assistant")
    assert len(got[0]["generated_text"]) == len(chat) + (not continued)
    assert got[0]["generated_text"][len(chat) - 1]["content"].startswith(chat[-1]["content"])


def test_several_sequences_with_beams(gen, checkpoint):
    options = dict(num_beams=3, num_return_sequences=2)
    got = gen(CHAT, max_new_tokens=NEW, **options)
    assert len(got) == 2 and got == reference(checkpoint, CHAT, **options)


def test_streaming_a_chat_yields_its_reply(gen):
    chunks = gen(CHAT, max_new_tokens=NEW, stream=True)
    assert not isinstance(chunks, (list, str))
    assert "".join(chunks) == gen(CHAT, max_new_tokens=NEW, return_full_text=False)[0]["generated_text"]
    with pytest.raises(PipelineError, match="one prompt or one chat"):
        gen([CHAT, OTHER], stream=True)


def test_tools_and_documents_reach_the_template(tmp_path):
    template = ("{% for tool in tools %}{{ tool['function']['name'] }};{% endfor %}{% for d in documents %}"
                "{{ d['title'] }}: {{ d['text'] }}\n{% endfor %}" + CHATML)
    folder = gpt2_chat(tmp_path)
    _set_tokenizer_config(folder, chat_template=template)
    tools = [{"type": "function", "function": {"name": "capital_of", "description": "The capital of a country",
                                               "parameters": {"type": "object", "properties": {}}}}]
    documents = [{"title": "France", "text": "Paris is the capital of France."}]
    got = zoo.pipeline("text-generation", model=str(folder))(CHAT, max_new_tokens=NEW, tools=tools, documents=documents,
                                                            return_tensors=True)
    expected = transformers.pipeline("text-generation", model=str(folder))(
        CHAT, max_new_tokens=NEW, do_sample=False, tools=tools, documents=documents, return_tensors=True)
    assert got[0]["generated_token_ids"] == [int(i) for i in expected[0]["generated_token_ids"]]


@pytest.mark.parametrize("inputs, message", [
    ([{"role": "user", "content": "Hi"}, {"role": "assistant"}], "message at index 1 is a dict with keys \\['role'\\]"),
    ([{"role": "user", "text": "Hi"}], "a dict is no prompt"),
    ([CHAT, "a prompt"], "list that is no chat"),
])
def test_malformed_chats_are_clear_errors(inputs, message, tmp_path_factory):
    gen = zoo.pipeline("text-generation", model=str(gpt2_chat(tmp_path_factory.mktemp("gpt2"))))
    with pytest.raises(PipelineError, match=message):
        gen(inputs, max_new_tokens=2)


def test_a_chat_without_a_template_says_so(tmp_path):
    make_gpt2(tmp_path, seed=7, positions=256)
    with pytest.raises(PipelineError, match="no chat template"):
        zoo.pipeline("text-generation", model=str(tmp_path))(CHAT, max_new_tokens=2)
