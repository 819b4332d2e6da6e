"""zoo.tokenization.Tokenizer against transformers' AutoTokenizer (the oracle), on the very same files.

Every option of ``__call__`` that changes the output is compared on tricky text, on both loading paths: a folder
with only vocab.txt + tokenizer_config.json (zoo builds the WordPiece pipeline itself) and tokenizer.json (the real
all-MiniLM-L6-v2 folder, and a tokenizer.json that transformers saves from the vocab folder). Then saving, errors and
thread safety. The BERT-specific loading details (normalizer settings, added tokens) are in
tests/plugins/test_bert_tokenizer.py.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import tokenizers
import torch

from tests.checkpoints import write_bert_vocab
from zoo.errors import TokenizerError, ZooError
from zoo.hub.files import LocalFolder
from zoo.plugins.bert.tokenization import from_files
from zoo.tokenization import BatchEncoding, Tokenizer

transformers = pytest.importorskip("transformers")

LONG = " ".join(["hello world"] * 40)  # longer than model_max_length (64)
TRICKY = [
    "Hello world!",
    "Café naïve ÜBER über",  # accents: kept, stripped or lowercased depending on the settings
    "中国日本語 hello",  # CJK: split per character unless tokenize_chinese_chars is False
    "I love 😀😀 python",  # emoji: one piece plus a ## continuation
    "a\tb\u0000c\x07 d\u200b\ufffd e\u0301",  # control, zero-width and replacement characters, combining accent
    "  multiple   spaces\n\n and\r\nnewlines  ",
    "",
    "   ",
    "\x00\u200b\t\x7f",  # nothing but characters the normalizer removes
    "the [MASK] is [SEP] bugs [cls] [MASK]x [PAD]",  # special tokens written inside text stay whole
    "HELLO World PYTHON",  # uppercase: only the cased tokenizers keep it apart
    "x" * 150,  # longer than max_input_chars_per_word: one [UNK]
    LONG,
    "don't stop , it's ok . really ?",  # clean_up_tokenization_spaces material
    "Ａ ｆｕｌｌ-width, and ｶﾀｶﾅ",
]
PAIRED = TRICKY[::-1]
WORDS = [["Hello", "wörld", "!"], ["中国", "😀", "x" * 3], ["[MASK]", "the", "bugs"]]


def _vocab_folder(folder: Path, **config) -> Path:
    write_bert_vocab(folder, do_lower_case=config.get("do_lower_case", True))
    path = folder / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return folder


def _hf(folder: Path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoTokenizer.from_pretrained(str(folder), **options)


VOCAB_CASES = {
    "vocab-lower": {},
    "vocab-cased": {"do_lower_case": False},
    "vocab-strip-accents": {"do_lower_case": False, "strip_accents": True},
    "vocab-keep-accents": {"strip_accents": False},
    "vocab-no-cjk-split": {"tokenize_chinese_chars": False},
}
PATHS = [*VOCAB_CASES, "hf-saved-lower", "hf-saved-cased", "minilm"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """name -> (zoo tokenizer, transformers tokenizer) loaded from the same folder, built on first use."""
    base = tmp_path_factory.mktemp("tokenizers")
    cache: dict[str, tuple[Tokenizer, object]] = {}

    def get(name: str, minilm: Path | None = None):
        if name not in cache:
            if name in VOCAB_CASES:
                folder = _vocab_folder(base / name, **VOCAB_CASES[name])
                assert not (folder / "tokenizer.json").exists()
            elif name.startswith("hf-saved-"):
                _zoo, hf = get("vocab-" + name.removeprefix("hf-saved-"))
                folder = base / name
                hf.save_pretrained(folder)
                assert (folder / "tokenizer.json").exists() and not (folder / "vocab.txt").exists()
            else:
                folder = minilm
            cache[name] = (from_files(LocalFolder(folder)), _hf(folder))
        return cache[name]

    return get


@pytest.fixture(params=PATHS)
def pair(request, loaded):
    """(zoo, transformers) for one loading path; the MiniLM path skips when its wheel is missing."""
    minilm = request.getfixturevalue("minilm") if request.param == "minilm" else None
    return loaded(request.param, minilm)


@pytest.fixture
def lower(loaded):
    return loaded("vocab-lower")


def _plain(value):
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    return value


def assert_same(zoo_tok, hf_tok, *args, **kwargs):
    """Same keys, same values, same container types (list / tensor / array) as transformers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = hf_tok(*args, **kwargs)
    got = zoo_tok(*args, **kwargs)
    assert isinstance(got, BatchEncoding) or not isinstance(zoo_tok, Tokenizer)
    assert list(got) == list(expected), kwargs
    for key, value in expected.items():
        assert type(got[key]) is type(value), (key, kwargs)
        if isinstance(value, (torch.Tensor, np.ndarray)):
            assert got[key].dtype == value.dtype and tuple(got[key].shape) == tuple(value.shape), (key, kwargs)
        assert _plain(got[key]) == _plain(value), (key, kwargs)
    return got, expected


def assert_same_error(zoo_tok, hf_tok, *args, **kwargs):
    with pytest.raises(Exception):
        hf_tok(*args, **kwargs)
    with pytest.raises(TokenizerError):
        zoo_tok(*args, **kwargs)


# --- the loading paths ------------------------------------------------------------------------------------------------


def test_the_backend_is_the_rust_library(pair):
    zoo_tok, _hf_tok = pair
    assert isinstance(zoo_tok.backend_tokenizer, tokenizers.Tokenizer)
    assert type(zoo_tok.backend_tokenizer.model).__name__ == "WordPiece"


def test_the_settings_change_the_tokens(loaded):
    """The vocab-folder cases differ from each other, so the comparisons below are not vacuous."""
    ids = {name: loaded(name)[0](TRICKY)["input_ids"] for name in VOCAB_CASES}
    assert len({json.dumps(v) for v in ids.values()}) == len(VOCAB_CASES)


def test_tricky_texts_one_by_one(pair):
    zoo_tok, hf_tok = pair
    for text in TRICKY:
        assert_same(zoo_tok, hf_tok, text)
        assert zoo_tok.tokenize(text) == hf_tok.tokenize(text)
        assert zoo_tok.encode(text) == hf_tok.encode(text)


def test_batch_with_every_extra_output(pair):
    zoo_tok, hf_tok = pair
    assert_same(zoo_tok, hf_tok, TRICKY, return_offsets_mapping=True, return_special_tokens_mask=True, return_length=True)
    assert_same(zoo_tok, hf_tok, TRICKY[0], return_offsets_mapping=True, return_special_tokens_mask=True, return_length=True)
    assert_same(zoo_tok, hf_tok, TRICKY, add_special_tokens=False, return_special_tokens_mask=True)
    assert_same(zoo_tok, hf_tok, TRICKY, return_token_type_ids=False, return_attention_mask=False)


def test_pairs(pair):
    zoo_tok, hf_tok = pair
    assert_same(zoo_tok, hf_tok, TRICKY, PAIRED, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert_same(zoo_tok, hf_tok, TRICKY[0], TRICKY[2])
    assert_same(zoo_tok, hf_tok, TRICKY[:3], PAIRED[:3], add_special_tokens=False)


@pytest.mark.parametrize("options", [
    {"padding": True},
    {"padding": "longest", "padding_side": "left"},
    {"padding": "max_length", "max_length": 24, "truncation": True},
    {"padding": "max_length", "max_length": 24},  # no truncation: the long text stays long
    {"padding": True, "max_length": 8},  # max_length is ignored beside padding=True without truncation
    {"padding": "max_length"},  # model_max_length
    {"padding": True, "pad_to_multiple_of": 8},
    {"padding": True, "truncation": True, "max_length": 16, "pad_to_multiple_of": 8, "padding_side": "left"},
    {"truncation": True},  # model_max_length
    {"truncation": "longest_first", "max_length": 10},
    {"max_length": 10},  # a max_length alone truncates
    {"truncation": False, "max_length": 10},
    {"truncation": "do_not_truncate", "padding": "do_not_pad"},
])
def test_padding_and_truncation(pair, options):
    zoo_tok, hf_tok = pair
    assert_same(zoo_tok, hf_tok, TRICKY, **options)
    assert_same(zoo_tok, hf_tok, TRICKY[:4], PAIRED[:4], **options)
    assert_same(zoo_tok, hf_tok, TRICKY[3], **options)


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
def test_pair_truncation_strategies(pair, strategy):
    zoo_tok, hf_tok = pair
    long_ones, short_ones = [LONG, TRICKY[3] * 8, LONG + "?", "x y z " * 20], ["python bugs", "", TRICKY[2], "é"]
    firsts, seconds = {
        "longest_first": ([LONG, "hello", LONG, TRICKY[2]], ["python bugs", LONG, LONG, TRICKY[3] * 8]),
        "only_first": (long_ones, short_ones),  # only the side that is truncated may be long
        "only_second": (short_ones, long_ones),
    }[strategy]
    assert_same(zoo_tok, hf_tok, firsts, seconds, truncation=strategy, max_length=20, return_offsets_mapping=True)
    assert_same(zoo_tok, hf_tok, firsts, seconds, truncation=strategy, max_length=20, padding="max_length",
                return_tensors="pt")


@pytest.mark.parametrize("strategy", ["only_first", "only_second"])
def test_truncating_a_sequence_too_short_fails_like_transformers(lower, strategy):
    """Truncating only the short side of a pair cannot reach max_length: both libraries refuse."""
    zoo_tok, hf_tok = lower
    first, second = ("hello", LONG) if strategy == "only_first" else (LONG, "hello")
    assert_same_error(zoo_tok, hf_tok, first, second, truncation=strategy, max_length=10)


@pytest.mark.parametrize("options", [
    {"truncation": True, "max_length": 10, "stride": 3},
    {"truncation": True, "max_length": 12, "stride": 0, "padding": True, "return_tensors": "pt"},
    {"max_length": 9, "stride": 2, "return_offsets_mapping": True, "return_special_tokens_mask": True},
    {"truncation": "longest_first", "max_length": 16, "stride": 5, "return_tensors": "np", "padding": True},
    {"truncation": True, "max_length": 8, "stride": 1, "padding": "max_length", "padding_side": "left"},
])
def test_overflowing_tokens_with_stride(pair, options):
    zoo_tok, hf_tok = pair
    got, _ = assert_same(zoo_tok, hf_tok, TRICKY, return_overflowing_tokens=True, **options)
    assert len(_plain(got["overflow_to_sample_mapping"])) > len(TRICKY)  # the long texts did overflow
    assert_same(zoo_tok, hf_tok, LONG, return_overflowing_tokens=True, **options)  # one text: still rows


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
def test_overflowing_pairs(pair, strategy):
    zoo_tok, hf_tok = pair
    long_ones, short_ones = [LONG, TRICKY[3] * 8, "x y z " * 20], ["python bugs", "", TRICKY[2]]
    firsts, seconds = {"longest_first": (long_ones, long_ones[::-1]), "only_first": (long_ones, short_ones),
                       "only_second": (short_ones, long_ones)}[strategy]
    for options in ({"max_length": 20, "stride": 2}, {"max_length": 31, "stride": 4, "padding": True,
                                                      "return_offsets_mapping": True, "return_tensors": "pt"}):
        got, _ = assert_same(zoo_tok, hf_tok, firsts, seconds, truncation=strategy, return_overflowing_tokens=True,
                             **options)
        assert len(_plain(got["overflow_to_sample_mapping"])) > len(firsts)


def test_a_stride_that_leaves_no_room_is_an_error(lower):
    """With a pair, the Rust library panics when a truncated side ends up no longer than the stride; transformers
    lets that PanicException (a BaseException, which ``except Exception`` misses) through. zoo raises its error."""
    zoo_tok, _hf_tok = lower
    with pytest.raises(TokenizerError, match="smaller stride"):
        zoo_tok(LONG, LONG, truncation=True, max_length=10, stride=3, return_overflowing_tokens=True)
    with pytest.raises(TokenizerError, match="stride"):  # one sequence: refused before encoding
        zoo_tok(LONG, truncation=True, max_length=4, stride=3, return_overflowing_tokens=True)
    assert zoo_tok(LONG, truncation=True, max_length=10)["input_ids"] == _hf_tok(LONG, truncation=True, max_length=10)["input_ids"]


def test_tensor_shapes_for_one_text_and_a_batch(pair):
    zoo_tok, hf_tok = pair
    for kind in ("pt", "np"):
        one, _ = assert_same(zoo_tok, hf_tok, TRICKY[0], return_tensors=kind)
        assert tuple(one["input_ids"].shape) == (1, len(zoo_tok(TRICKY[0])["input_ids"]))
        assert_same(zoo_tok, hf_tok, TRICKY, padding=True, return_tensors=kind)
        assert_same(zoo_tok, hf_tok, TRICKY[:2], PAIRED[:2], padding=True, return_tensors=kind)
    one, _ = assert_same(zoo_tok, hf_tok, TRICKY[0])
    assert isinstance(one["input_ids"][0], int)  # one text without tensors: flat lists


def test_pretokenized_words(pair):
    zoo_tok, hf_tok = pair
    assert_same(zoo_tok, hf_tok, WORDS, is_split_into_words=True, return_offsets_mapping=True)
    assert_same(zoo_tok, hf_tok, WORDS[0], is_split_into_words=True, return_offsets_mapping=True)
    assert_same(zoo_tok, hf_tok, WORDS, WORDS[::-1], is_split_into_words=True, padding=True, return_tensors="pt")
    assert_same(zoo_tok, hf_tok, WORDS[0], WORDS[1], is_split_into_words=True)


def test_word_ids_sequence_ids_and_tokens(pair):
    zoo_tok, hf_tok = pair
    for args, options in (((TRICKY[:5], PAIRED[:5]), {}), ((WORDS,), {"is_split_into_words": True}),
                          ((TRICKY[:5],), {"padding": True, "padding_side": "left"})):
        got, expected = zoo_tok(*args, **options), hf_tok(*args, **options)
        for i in range(len(args[0])):
            assert got.word_ids(i) == expected.word_ids(i)
            assert got.sequence_ids(i) == expected.sequence_ids(i)
            assert got.tokens(i) == expected.tokens(i)


def test_decode_and_batch_decode(pair):
    zoo_tok, hf_tok = pair
    ids = hf_tok(TRICKY, PAIRED)["input_ids"] + [[], [zoo_tok.pad_token_id] * 3, list(range(len(hf_tok)))]
    for skip in (False, True):
        for cleanup in (None, False, True):
            options = {"skip_special_tokens": skip, "clean_up_tokenization_spaces": cleanup}
            assert zoo_tok.batch_decode(ids, **options) == hf_tok.batch_decode(ids, **options)
            assert [zoo_tok.decode(row, **options) for row in ids] == [hf_tok.decode(row, **options) for row in ids]
    padded = hf_tok(TRICKY, padding=True, return_tensors="pt")["input_ids"]
    assert zoo_tok.batch_decode(padded) == hf_tok.batch_decode(padded)
    assert zoo_tok.decode(padded[0]) == hf_tok.decode(padded[0])
    assert zoo_tok.decode(padded[0].numpy()) == hf_tok.decode(padded[0].numpy())
    assert zoo_tok.decode(ids[0][1]) == hf_tok.decode(ids[0][1])  # one id
    assert zoo_tok.batch_decode(ids[0]) == hf_tok.batch_decode(ids[0])  # one flat sequence


def test_ids_and_tokens(pair):
    zoo_tok, hf_tok = pair
    every_id = list(range(len(hf_tok)))
    assert zoo_tok.convert_ids_to_tokens(every_id) == hf_tok.convert_ids_to_tokens(every_id)
    assert (zoo_tok.convert_ids_to_tokens(every_id, skip_special_tokens=True)
            == hf_tok.convert_ids_to_tokens(every_id, skip_special_tokens=True))
    assert zoo_tok.convert_ids_to_tokens(3) == hf_tok.convert_ids_to_tokens(3)
    tokens = [t for t in hf_tok.convert_ids_to_tokens(every_id) if t] + ["not-a-token", "[MASK]", "##s", ""]
    assert zoo_tok.convert_tokens_to_ids(tokens) == hf_tok.convert_tokens_to_ids(tokens)
    assert zoo_tok.convert_tokens_to_ids("[CLS]") == hf_tok.convert_tokens_to_ids("[CLS]")
    assert zoo_tok.convert_tokens_to_ids("not-a-token") == hf_tok.unk_token_id


def test_special_tokens_and_vocabulary(pair):
    zoo_tok, hf_tok = pair
    for name in ("cls", "sep", "pad", "unk", "mask", "bos", "eos"):
        assert getattr(zoo_tok, f"{name}_token") == getattr(hf_tok, f"{name}_token"), name
        assert getattr(zoo_tok, f"{name}_token_id") == getattr(hf_tok, f"{name}_token_id"), name
    assert zoo_tok.all_special_tokens == hf_tok.all_special_tokens
    assert zoo_tok.all_special_ids == hf_tok.all_special_ids
    assert zoo_tok.vocab_size == hf_tok.vocab_size
    assert len(zoo_tok) == len(hf_tok)
    assert zoo_tok.get_vocab() == hf_tok.get_vocab()
    assert zoo_tok.model_max_length == hf_tok.model_max_length
    assert (zoo_tok.padding_side, zoo_tok.truncation_side) == (hf_tok.padding_side, hf_tok.truncation_side)
    assert zoo_tok.clean_up_tokenization_spaces == hf_tok.clean_up_tokenization_spaces
    assert list(zoo_tok.model_input_names) == list(hf_tok.model_input_names)


def test_auto_tokenizer_and_its_keyword_arguments(minilm):
    from zoo import AutoTokenizer

    for options in ({}, {"model_max_length": 16, "padding_side": "left", "truncation_side": "left"},
                    {"do_lower_case": False}, {"clean_up_tokenization_spaces": True}):
        zoo_tok, hf_tok = AutoTokenizer.from_pretrained(minilm, **options), _hf(minilm, **options)
        assert_same(zoo_tok, hf_tok, TRICKY, padding=True, truncation=True)
        assert_same(zoo_tok, hf_tok, TRICKY, PAIRED, truncation=True, max_length=24, stride=3, padding=True,
                    return_overflowing_tokens=True)
        assert zoo_tok.batch_decode(hf_tok(TRICKY)["input_ids"]) == hf_tok.batch_decode(hf_tok(TRICKY)["input_ids"])


# --- edge cases where zoo deliberately differs ------------------------------------------------------------------------


def test_an_empty_text_pair_is_a_pair(lower):
    """transformers drops text_pair="" for one input (it tests ``if text_pair``) but keeps it in a batch, so the
    same pair encodes two ways; zoo encodes it as the batch does, everywhere."""
    zoo_tok, hf_tok = lower
    assert zoo_tok("hello", "")["input_ids"] == zoo_tok(["hello"], [""])["input_ids"][0]
    assert zoo_tok("hello", "")["input_ids"] == hf_tok(["hello"], [""])["input_ids"][0]


def test_an_empty_batch_gives_empty_lists(lower):
    zoo_tok, _hf_tok = lower  # transformers raises IndexError here
    assert dict(zoo_tok([])) == {"input_ids": [], "token_type_ids": [], "attention_mask": []}


def test_stride_without_truncation_is_an_error(lower):
    """transformers ignores the stride silently and returns no overflow; zoo says why."""
    zoo_tok, _hf_tok = lower
    with pytest.raises(TokenizerError, match="stride only applies with truncation"):
        zoo_tok(LONG, stride=2, return_overflowing_tokens=True)


def test_padding_to_max_length_needs_a_length(tmp_path):
    """transformers silently skips padding="max_length" when nothing gives a length; zoo says what is missing."""
    folder = _vocab_folder(tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["model_max_length"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    zoo_tok = from_files(LocalFolder(folder))
    with pytest.raises(TokenizerError, match="needs max_length"):
        zoo_tok(["a", "b c"], padding="max_length")
    assert zoo_tok(["a", "b c"], padding="max_length", max_length=6)["input_ids"] == \
        _hf(folder)(["a", "b c"], padding="max_length", max_length=6)["input_ids"]


def test_padding_to_a_multiple_that_truncation_contradicts(lower):
    zoo_tok, hf_tok = lower
    assert_same_error(zoo_tok, hf_tok, TRICKY, padding=True, truncation=True, max_length=10, pad_to_multiple_of=8)


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda t: t(None), "nothing to encode"),
    (lambda t: t(None, "a pair"), "text_pair was given without text"),
    (lambda t: t([["a", 1]]), "a list holding list"),
    (lambda t: t([("a", "b", "c")]), "a pair is exactly two strings; got one of 3 items"),
    (lambda t: t([("a", "b")], ["c"]), "already holds .text, text_pair. pairs"),
    (lambda t: t(42), "got int"),
    (lambda t: t(["fine", 3, None]), "a list holding NoneType, int"),
    (lambda t: t([["nested"]]), "a list holding list"),
    (lambda t: t("text", 7), "text_pair must be"),
    (lambda t: t(["one", "two"], ["only one"]), "2 texts but 1 text_pairs"),
    (lambda t: t(["one", "two"], "a string"), "text is a batch but text_pair is one input"),
    (lambda t: t("one", ["a", "b"]), "text is one input but text_pair is a batch"),
    (lambda t: t(["a", "b c d"], return_tensors="pt"), "different lengths"),
    (lambda t: t(["a", "b c d"], return_tensors="np"), "pass padding=True"),
    (lambda t: t("a", return_tensors="tf"), "return_tensors must be"),
    (lambda t: t("a", padding="longest_first"), "padding must be one of"),
    (lambda t: t("a", truncation="only_third"), "truncation one of"),
    (lambda t: t("a", padding=["max_length"]), "padding must be one of"),
    (lambda t: t(["a", "b"], padding=True, padding_side="middle"), "padding_side must be"),
    (lambda t: t([["a"], "b"], is_split_into_words=True), "list of words"),
    (lambda t: t.encode(["a", "b"]), "encode takes one string"),
])
def test_bad_input_is_a_clear_error(lower, call, message):
    zoo_tok, _hf_tok = lower
    with pytest.raises(TokenizerError, match=message) as raised:
        call(zoo_tok)
    assert isinstance(raised.value, (ZooError, ValueError))


def test_padding_to_max_length_without_any_length(minilm, tmp_path):
    folder = tmp_path / "nolimit"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes((minilm / "tokenizer.json").read_bytes())
    zoo_tok = Tokenizer.from_repo(LocalFolder(folder))  # no tokenizer_config.json: no model_max_length
    with pytest.raises(TokenizerError, match="padding='max_length' needs max_length="):
        zoo_tok(["a", "b"], padding="max_length")


def test_a_folder_with_no_tokenizer_files_says_what_it_needs(tmp_path):
    from zoo import AutoTokenizer

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TokenizerError, match="neither tokenizer.json nor vocab.txt"):
        AutoTokenizer.from_pretrained(tmp_path)
    with pytest.raises(TokenizerError, match="tokenizer.json nor vocab.txt"):
        from_files(LocalFolder(tmp_path))
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(TokenizerError, match="has no tokenizer.json"):
        Tokenizer.from_repo(LocalFolder(bare))


@pytest.mark.parametrize("content", ["{not json", '{"version": "1.0", "model": {"type": "Nope"}}', ""])
def test_a_corrupt_tokenizer_json_is_a_tokenizer_error(tmp_path, content):
    from zoo import AutoTokenizer

    write_bert_vocab(tmp_path)  # a usable vocab.txt beside it must not hide the broken file
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "tokenizer.json").write_text(content)
    with pytest.raises(TokenizerError, match="tokenizer.json is not a valid tokenizers file"):
        AutoTokenizer.from_pretrained(tmp_path)


# --- saving -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vocab-lower", "vocab-cased", "vocab-strip-accents", "minilm"])
def test_save_pretrained_round_trip(request, loaded, tmp_path, name):
    zoo_tok, hf_tok = loaded(name, request.getfixturevalue("minilm") if name == "minilm" else None)
    files = zoo_tok.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in files) == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == sorted(p.name for p in files)  # no temp files
    again, hf_again = from_files(LocalFolder(tmp_path / "saved")), _hf(tmp_path / "saved")
    for reloaded in (again, hf_again):
        assert_same(reloaded, hf_tok, TRICKY, PAIRED, padding=True, truncation=True, return_offsets_mapping=True)
        assert reloaded.model_max_length == hf_tok.model_max_length
        assert reloaded.all_special_ids == hf_tok.all_special_ids
        assert reloaded.batch_decode(hf_tok(TRICKY)["input_ids"]) == hf_tok.batch_decode(hf_tok(TRICKY)["input_ids"])
    again.save_pretrained(tmp_path / "twice")  # saving is stable: a second round writes the same files
    for file in files:
        assert (tmp_path / "twice" / file.name).read_text() == file.read_text()


def test_transformers_saves_added_tokens_and_zoo_loads_them(tmp_path):
    hf_tok = _hf(_saved_vocab(tmp_path))  # a fresh one: adding tokens changes it
    hf_tok.add_tokens(["newword", "Hello"])
    hf_tok.add_special_tokens({"additional_special_tokens": ["[E1]"]})
    hf_tok.save_pretrained(tmp_path / "hf")
    zoo_tok = from_files(LocalFolder(tmp_path / "hf"))
    text = ["a newword [E1] Hello hello", "newwords [e1]"]
    assert_same(zoo_tok, hf_tok, text, return_special_tokens_mask=True)
    assert zoo_tok.all_special_tokens == hf_tok.all_special_tokens
    ids = hf_tok(text)["input_ids"]
    assert zoo_tok.batch_decode(ids, skip_special_tokens=True) == hf_tok.batch_decode(ids, skip_special_tokens=True)
    zoo_tok.save_pretrained(tmp_path / "zoo")  # and back again
    assert_same(_hf(tmp_path / "zoo"), hf_tok, text, return_special_tokens_mask=True)


def _saved_vocab(tmp_path: Path) -> Path:
    return _vocab_folder(tmp_path / "vocab")


def test_a_failing_save_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    zoo_tok = from_files(LocalFolder(_saved_vocab(tmp_path)))
    folder = tmp_path / "saved"
    zoo_tok.save_pretrained(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    zoo_tok.backend_tokenizer.add_tokens(["brand-new"])  # a change that would rewrite tokenizer.json
    zoo_tok.init_kwargs["callback"] = object()  # not JSON: found only after tokenizer.json is serialised
    with pytest.raises(TokenizerError, match=r"settings \['callback'\] are not JSON"):
        zoo_tok.save_pretrained(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

    del zoo_tok.init_kwargs["callback"]
    real_write_text, calls = Path.write_text, []

    def disk_full_on_the_third_file(self, *args, **kwargs):
        calls.append(self.name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_on_the_third_file)
    with pytest.raises(OSError, match="No space left"):
        zoo_tok.save_pretrained(folder)
    monkeypatch.undo()
    assert len(calls) == 3
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # not even tokenizer.json was replaced


# --- threads ----------------------------------------------------------------------------------------------------------


def test_one_tokenizer_shared_by_threads(lower):
    """Padding and truncation are set on the shared Rust backend per call; concurrent calls must not see each
    other's settings."""
    zoo_tok, _hf_tok = lower
    settings = [
        {"padding": True},
        {"padding": "max_length", "max_length": 40, "truncation": True},
        {"padding": True, "padding_side": "left", "pad_to_multiple_of": 8},
        {"truncation": True, "max_length": 6, "stride": 2, "return_overflowing_tokens": True},
        {},
        {"padding": "max_length", "max_length": 12, "truncation": "only_second"},
    ]
    texts = [TRICKY[i:i + 4] for i in range(0, len(TRICKY) - 4, 2)]

    def call(option_index: int, text_index: int):
        options, batch = settings[option_index], texts[text_index]
        if options.get("truncation") == "only_second":  # a pair: a short first text, the batch truncated after it
            return dict(zoo_tok(["python"] * len(batch), batch, **options))
        return dict(zoo_tok(batch, **options))

    jobs = [(o, t) for o in range(len(settings)) for t in range(len(texts))] * 4
    expected = {job: call(*job) for job in set(jobs)}
    results: dict[int, list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(index: int):
        try:
            start.wait()
            results[index] = [(job, call(*job)) for job in jobs[index::8]]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(len(r) for r in results.values()) == len(jobs)
    for rows in results.values():
        for job, got in rows:
            assert got == expected[job], job
    assert zoo_tok.backend_tokenizer.padding is None and zoo_tok.backend_tokenizer.truncation is None


def test_save_from_threads_never_mixes_files(lower, tmp_path):
    zoo_tok = from_files(LocalFolder(_saved_vocab(tmp_path)))
    threads = [threading.Thread(target=zoo_tok.save_pretrained, args=(tmp_path / "out",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(os.listdir(tmp_path / "out")) == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert_same(from_files(LocalFolder(tmp_path / "out")), lower[1], TRICKY)
