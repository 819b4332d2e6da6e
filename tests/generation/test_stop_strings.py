"""stop_strings against transformers' StopStringCriteria, through generate and on their own.

The checkpoint has a real byte-level BPE tokenizer (the one tests/plugins/test_gpt2.py trains); stop strings are
cut out of what the model does generate, split across tokens and inside them, so they fire. zoo's generate with
zoo's tokenizer must stop where transformers' does with its own; the preprocessed vocabulary table must equal
transformers' for a byte-level and for a WordPiece tokenizer.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers.generation.stopping_criteria import StopStringCriteria as HFStopStringCriteria

import zoo
from tests.checkpoints import BERT_VOCAB, make_bert
from tests.generation.common import assert_same, hf_generate, zoo_generate
from tests.plugins.test_gpt2 import make_gpt2, write_tokenizer
from zoo.generation import StopStringCriteria
from zoo.plugins.gpt2.modeling import GPT2LMHeadModel

PROMPTS = ["Hello world", "The quick brown fox jumps over"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm-stop")
    write_tokenizer(folder, as_json=True)
    tokenizer = zoo.AutoTokenizer.from_pretrained(folder)
    eos = tokenizer.eos_token_id
    hf = make_gpt2(folder, "causal-lm", scale=0.5, seed=3, vocab_size=len(tokenizer), eos_token_id=eos,
                   bos_token_id=eos, n_positions=96)
    return hf, GPT2LMHeadModel.from_pretrained(folder), tokenizer, transformers.AutoTokenizer.from_pretrained(folder)


def left_padded(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    rows = [tokenizer.encode(t) for t in texts]
    width = max(map(len, rows))
    pad = tokenizer.eos_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return {"input_ids": ids, "attention_mask": mask}


def stop_strings_from(tokenizer, new_ids: list[int]) -> list[str]:
    """Pieces of the generated text: across a token boundary, the inside of a token, a token and a half."""
    pieces = [tokenizer.decode([t]) for t in new_ids]
    ok = [i for i, p in enumerate(pieces) if p and p.isascii() and p.isprintable()]
    out = []
    for i, j in zip(ok, ok[1:]):
        if j == i + 1 and len(out) < 2:
            out.append(pieces[i][-1] + pieces[j][:1])  # split over two tokens
    for i in ok:
        if len(pieces[i].strip()) >= 3:
            out.append(pieces[i].strip()[1:-1])  # inside one token
            break
    return out


def test_stop_strings_stop_where_transformers_stops(lm):
    hf, model, tokenizer, hf_tokenizer = lm
    batch = left_padded(tokenizer, PROMPTS)
    free = model.generate(**batch, max_new_tokens=30, eos_token_id=[])
    candidates = stop_strings_from(tokenizer, free[0, batch["input_ids"].shape[1]:].tolist())
    candidates += stop_strings_from(tokenizer, free[1, batch["input_ids"].shape[1]:].tolist())
    assert len(candidates) >= 3, candidates
    stopped_early = 0
    for stop_strings in [candidates[:1], candidates[1:3], candidates[-1], candidates + ["never in the text"]]:
        for extra in (dict(), dict(num_beams=2), dict(do_sample=True, top_k=20)):
            common = dict(max_new_tokens=30, stop_strings=stop_strings, pad_token_id=tokenizer.eos_token_id, **extra)
            got = zoo_generate(model, batch, tokenizer=tokenizer, **common)
            assert_same(got, hf_generate(hf, batch, tokenizer=hf_tokenizer, **common))
            stopped_early += got.shape[1] < batch["input_ids"].shape[1] + 30
    assert stopped_early >= 3  # the stop strings did fire


def test_a_stop_string_already_in_the_prompt_does_not_stop_generation(lm):
    hf, model, tokenizer, hf_tokenizer = lm
    prompt = tokenizer("Hello world", return_tensors="pt")["input_ids"]
    common = dict(max_new_tokens=12, stop_strings=["Hello"], eos_token_id=[], pad_token_id=tokenizer.eos_token_id)
    got = zoo_generate(model, prompt, tokenizer=tokenizer, **common)
    assert got.shape[1] == prompt.shape[1] + 12 or "Hello" in tokenizer.decode(got[0, prompt.shape[1]:])
    assert_same(got, hf_generate(hf, prompt, tokenizer=hf_tokenizer, **{**common, "eos_token_id": None}))


@pytest.mark.parametrize("stop_strings", [["do"], ["Hello", " wor", "ld!"], "😀", ["中文", "e\n"]],
                         ids=["short", "several", "emoji", "cjk-newline"])
def test_the_vocabulary_table_equals_transformers_byte_level(lm, stop_strings):
    _, _, tokenizer, hf_tokenizer = lm
    expected = HFStopStringCriteria(hf_tokenizer, stop_strings)
    for tok in (tokenizer, hf_tokenizer):  # zoo's tokenizer, and transformers' through zoo's criterion
        got = StopStringCriteria(tok, stop_strings)
        assert torch.equal(got.embedding_vec, expected.embedding_vec)
        assert (got.max_valid_positions, got.max_valid_end_lens, got.maximum_token_len) == (
            expected.max_valid_positions, expected.max_valid_end_lens, expected.maximum_token_len)
    ids = torch.tensor([hf_tokenizer.encode("xx " + (stop_strings if isinstance(stop_strings, str) else stop_strings[0]))])
    assert bool(StopStringCriteria(tokenizer, stop_strings)(ids, None)[0]) == bool(expected(ids, None)[0]) is True


def test_the_vocabulary_table_equals_transformers_wordpiece(tmp_path):
    make_bert(tmp_path)
    # the table is built by decoding each token after "abcdef", which this vocabulary must spell (not [UNK])
    (tmp_path / "vocab.txt").write_text("\n".join(BERT_VOCAB + ["##b", "##c", "##d", "##f"]) + "\n", encoding="utf-8")
    tokenizer = zoo.AutoTokenizer.from_pretrained(tmp_path)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for stop_strings in (["love"], ["the python", "bugs"], "ing"):
        expected = HFStopStringCriteria(hf_tokenizer, stop_strings)
        got = StopStringCriteria(tokenizer, stop_strings)
        assert torch.equal(got.embedding_vec, expected.embedding_vec), stop_strings
        ids = torch.tensor([hf_tokenizer.encode("i love the python bugs", add_special_tokens=False)])
        for end in range(1, ids.shape[1] + 1):
            assert torch.equal(got(ids[:, :end], None), expected(ids[:, :end], None)), (stop_strings, end)


def test_stop_strings_need_the_tokenizer(lm):
    _, model, _, _ = lm
    with pytest.raises(ValueError, match="stop_strings need the model's tokenizer"):
        model.generate(torch.tensor([[5, 6]]), max_new_tokens=3, stop_strings=["x"])
    with pytest.raises(ValueError, match="stop_strings must be a non-empty string"):
        model.generate(torch.tensor([[5, 6]]), max_new_tokens=3, stop_strings=[""])
