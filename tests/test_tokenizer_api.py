"""The tokenizer API people change and call every day, idiom by idiom, against transformers 5 on the same files.

Every test loads one folder twice, with ``transformers.AutoTokenizer`` (the oracle) and ``zoo.AutoTokenizer``, does
the same thing to both (assign ``pad_token``, ``add_tokens``, ``add_special_tokens``, ...), and compares what
comes out: token ids, decoded text, vocabularies, special tokens, and, after ``save_pretrained``, what each
library reads back from the other's folder. The folders, written at test time, cover the three tokenizer families
in both layouts the Hub publishes: BERT WordPiece (vocab.txt, or a tokenizer.json transformers saved), GPT-2
byte-level BPE (vocab.json + merges.txt, or tokenizer.json) and RoBERTa (the same, with ``<s> A </s></s> B </s>``).
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from tests.checkpoints import write_bert_vocab
from tests.test_tokenization import assert_same
from zoo.errors import TokenizerError

transformers = pytest.importorskip("transformers")
from tokenizers import AddedToken  # noqa: E402  (after the importorskip, like the library it comes with)

CORPUS = [
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "  multiple   spaces\tand\ttabs\n\nnew lines \r\n and trailing   ",
    "emoji 😀🎉👍🏽 and CJK 中文字符 日本語のテキスト 한국어",
    "café naïve über, it's don't we'll; numbers 12345 and 3.14159!",
    "a python loves bugs and the bugs love python",
]
TEXTS = [
    "Hello world!",
    "a brandnew <e1> token, <E2> and hello",
    "the <newpad> and <CLS2> x <e1><e1> y",
    "café 中文 😀 python bugs",
    "  spaces  and\ttabs ",
    "",
]
PAIRS = ["the second", "hello again <e1>", "", "x", "world world", "bugs"]
LAYOUTS = ["bert-vocab", "bert-json", "gpt2-vocab", "gpt2-json", "roberta-vocab", "roberta-json"]


def _train_bpe(specials: list[str]) -> tuple[dict[str, int], list[str]]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=330, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(CORPUS * 3, trainer)
    model = json.loads(backend.to_str())["model"]
    return dict(model["vocab"]), [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]


def _byte_level(vocab: dict[str, int], merges: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    backend = Tokenizer(models.BPE(vocab, [tuple(m.split(" ")) for m in merges], continuing_subword_prefix="",
                                   end_of_word_suffix="", fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return backend


def write_layout(folder: Path, layout: str, **config) -> Path:
    """One tokenizer folder (with a config.json naming its model_type) in the given layout."""
    family, kind = layout.split("-")
    folder.mkdir(parents=True, exist_ok=True)
    if family == "bert":
        write_bert_vocab(folder)
        settings = json.loads((folder / "tokenizer_config.json").read_text())
        (folder / "tokenizer_config.json").write_text(json.dumps({**settings, **config}))
        if kind == "json":  # the tokenizer.json transformers writes for these files
            saved = folder / "saved"
            load_hf(folder).save_pretrained(saved)
            for file in folder.iterdir():
                if file.is_file():
                    file.unlink()
            for file in saved.iterdir():
                shutil.move(str(file), folder / file.name)
            saved.rmdir()
    elif family == "gpt2":
        vocab, merges = _train_bpe(["<|endoftext|>"])
        _write_bpe(folder, kind, vocab, merges, _byte_level(vocab, merges), {"tokenizer_class": "GPT2Tokenizer", **config})
    else:
        from tokenizers import processors

        vocab, merges = _train_bpe(["<s>", "<pad>", "</s>", "<unk>"])
        vocab["<mask>"] = len(vocab)
        backend = _byte_level(vocab, merges)
        backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                              add_prefix_space=False)
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<s>", "<pad>", "</s>", "<unk>")])
        backend.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
        _write_bpe(folder, kind, vocab, merges, backend, {"tokenizer_class": "RobertaTokenizer", **config})
    (folder / "config.json").write_text(json.dumps({"model_type": family}))
    return folder


def _write_bpe(folder: Path, kind: str, vocab: dict[str, int], merges: list[str], backend, config: dict) -> None:
    if kind == "json":
        backend.save(str(folder / "tokenizer.json"))
    else:
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def load_hf(folder: Path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoTokenizer.from_pretrained(str(folder), **options)


def load_both(folder: Path, **options):
    return zoo.AutoTokenizer.from_pretrained(folder, **options), load_hf(folder, **options)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """layout -> a folder written once for the module (tests change tokenizers, never these files)."""
    root = tmp_path_factory.mktemp("tokenizer-api")
    return {layout: write_layout(root / layout, layout) for layout in LAYOUTS}


@pytest.fixture(params=LAYOUTS)
def layout(request, folders):
    return request.param, folders[request.param]


@pytest.fixture
def both(layout):
    """Freshly loaded (zoo, transformers) tokenizers of one layout."""
    return load_both(layout[1])


def _plain(value):
    return value.tolist() if isinstance(value, (torch.Tensor, np.ndarray)) else value


def assert_same_state(ours, theirs, texts=TEXTS, pairs=PAIRS):
    """Vocabulary, special tokens, and encodings and decodings of ``texts`` (alone and paired) equal."""
    pairs = [pairs[i % len(pairs)] for i in range(len(texts))]
    assert len(ours) == len(theirs) and ours.vocab_size == theirs.vocab_size
    assert ours.get_vocab() == theirs.get_vocab()
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.all_special_ids == theirs.all_special_ids
    assert ours.extra_special_tokens == theirs.extra_special_tokens
    for name in ("bos", "eos", "unk", "sep", "pad", "cls", "mask"):
        assert getattr(ours, f"{name}_token") == getattr(theirs, f"{name}_token"), name
        assert getattr(ours, f"{name}_token_id") == getattr(theirs, f"{name}_token_id"), name
    options = {"return_special_tokens_mask": True, "return_offsets_mapping": True}
    if theirs.pad_token is not None:
        options["padding"] = True
    assert_same(ours, theirs, texts, **options)
    assert_same(ours, theirs, texts, pairs, **options)
    ids = theirs(texts, pairs)["input_ids"]
    for skip in (False, True):
        assert ours.batch_decode(ids, skip_special_tokens=skip) == theirs.batch_decode(ids, skip_special_tokens=skip)
    every = list(range(len(theirs)))
    assert ours.convert_ids_to_tokens(every, skip_special_tokens=True) == theirs.convert_ids_to_tokens(
        every, skip_special_tokens=True)


def assert_survives_saving(ours, theirs, tmp_path: Path, texts=TEXTS, unchanged: bool = True):
    """Each library saves; each library loads both folders; all four equal what transformers reads back from its
    own folder, which (``unchanged``) equals the tokenizer that was saved. A token that was named but never added
    is added on loading, by both libraries, so there the reloaded ones differ from the saved one."""
    config = {"model_type": ours.model_type}
    for name, tok in (("zoo", ours), ("hf", theirs)):
        tok.save_pretrained(tmp_path / name)
        (tmp_path / name / "config.json").write_text(json.dumps(config))
    reference = load_hf(tmp_path / "hf")
    if unchanged:
        assert_same_state(reference, theirs, texts)
    for name in ("zoo", "hf"):
        zoo_again, hf_again = load_both(tmp_path / name)
        assert_same_state(zoo_again, reference, texts)
        assert_same_state(hf_again, reference, texts)


# --- special tokens ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"])
def test_assigning_a_special_token(both, name, tmp_path):
    """Each named token set to a known token, an unknown one (named, not added: its id is the unk id), an
    AddedToken and None, then saved (loading adds the unknown one, in both libraries)."""
    ours, theirs = both
    known = theirs.convert_ids_to_tokens(7)
    values = [known, "<newpad>", AddedToken("<CLS2>", lstrip=True), None, known]
    if name == "unk_token":  # an unknown unk token sends transformers into endless recursion (its id is the unk id)
        values = [known, AddedToken(theirs.convert_ids_to_tokens(9), lstrip=True), None, known]
    for value in values:
        setattr(ours, name, value)
        setattr(theirs, name, value)
        assert getattr(ours, name) == getattr(theirs, name)
        assert getattr(ours, name + "_id") == getattr(theirs, name + "_id")
        assert_same_state(ours, theirs)
    if name != "unk_token":
        setattr(ours, name, "<newpad>")
        setattr(theirs, name, "<newpad>")
    assert_survives_saving(ours, theirs, tmp_path, unchanged=False)


def test_assigning_none_survives_saving(both, tmp_path):
    """An unset token is written as null, so the architecture's default does not come back on loading."""
    ours, theirs = both
    for tok in (ours, theirs):
        tok.eos_token = None
        tok.mask_token = None
    assert_survives_saving(ours, theirs, tmp_path)


@pytest.mark.parametrize("index", [0, 3, 17, -1])
def test_assigning_a_special_token_id(both, index):
    ours, theirs = both
    index = len(theirs) - 1 if index == -1 else index
    for name in ("pad_token_id", "eos_token_id", "cls_token_id", "unk_token_id"):
        setattr(ours, name, index)
        setattr(theirs, name, index)
        assert getattr(ours, name) == getattr(theirs, name) == index
    ours.sep_token_id = theirs.sep_token_id = None
    assert_same_state(ours, theirs)


def test_pad_token_from_eos_then_padding(layout):
    """The GPT-2 idiom: a tokenizer without a pad token borrows the eos token, then pads (right and left)."""
    ours, theirs = load_both(layout[1])
    if theirs.eos_token is None:  # BERT has none: give both the same one first
        ours.eos_token = theirs.eos_token = "[SEP]"
    ours.pad_token = ours.eos_token
    theirs.pad_token = theirs.eos_token
    assert ours.pad_token_id == theirs.pad_token_id == theirs.eos_token_id
    for side in ("right", "left"):
        ours.padding_side = theirs.padding_side = side
        assert_same(ours, theirs, TEXTS, padding=True, return_tensors="pt")
        assert_same(ours, theirs, TEXTS, PAIRS, padding="max_length", max_length=40, truncation=True)


def test_extra_special_tokens_are_settable(both, tmp_path):
    """``additional_special_tokens`` (zoo's spelling of transformers 5's ``extra_special_tokens``) names tokens
    without adding them; decoding skips the ones the vocabulary has."""
    ours, theirs = both
    theirs.add_tokens(["<e1>"], special_tokens=True)
    ours.add_tokens(["<e1>"], special_tokens=True)
    ours.additional_special_tokens = ["<e1>", "<E2>"]
    theirs.extra_special_tokens = ["<e1>", "<E2>"]
    assert ours.extra_special_tokens == ours.additional_special_tokens == ["<e1>", "<E2>"]
    assert_same_state(ours, theirs)
    assert ours.additional_special_tokens_ids == theirs.extra_special_tokens_ids
    assert_survives_saving(ours, theirs, tmp_path, unchanged=False)  # <E2> is added on loading
    ours.extra_special_tokens = theirs.extra_special_tokens = None
    assert_same_state(ours, theirs)


def test_padding_and_truncation_sides_are_settable(both):
    ours, theirs = both
    if theirs.pad_token is None:
        ours.pad_token = theirs.pad_token = ours.eos_token
    for padding_side, truncation_side in (("left", "left"), ("right", "left"), ("left", "right")):
        ours.padding_side, ours.truncation_side = padding_side, truncation_side
        theirs.padding_side, theirs.truncation_side = padding_side, truncation_side
        assert_same(ours, theirs, TEXTS, padding=True, truncation=True, max_length=6, return_offsets_mapping=True)
    with pytest.raises(TokenizerError, match="padding_side must be 'left' or 'right', got 'middle'"):
        ours.padding_side = "middle"
    with pytest.raises(TokenizerError, match="truncation_side must be"):
        ours.truncation_side = None
    assert (ours.padding_side, ours.truncation_side) == ("left", "right")


# --- adding tokens ----------------------------------------------------------------------------------------------------


def test_add_tokens(both, tmp_path):
    ours, theirs = both
    steps = [
        (["brandnew", "hello", "brandnew", "another"], {}),  # a known word and a duplicate: not counted
        ("<e1>", {}),
        (AddedToken("<E2>", lstrip=True, rstrip=True), {}),
        (["<CLS2>", AddedToken("<newpad>", single_word=True)], {"special_tokens": True}),
        ([], {}),
        (["brandnew"], {"special_tokens": True}),  # made special: counted by the backend, as in transformers
    ]
    for tokens, options in steps:
        assert ours.add_tokens(tokens, **options) == theirs.add_tokens(tokens, **options), tokens
        assert_same_state(ours, theirs)
    assert len(ours) > ours.vocab_size
    assert_survives_saving(ours, theirs, tmp_path)


@pytest.mark.parametrize("replace", [True, False])
def test_add_special_tokens(both, replace, tmp_path):
    ours, theirs = both
    steps = [
        {"cls_token": "<CLS2>", "additional_special_tokens": ["<e1>", "<E2>"]},
        {"pad_token": "<newpad>"},
        {"additional_special_tokens": ["<E2>", AddedToken("<e3>", lstrip=True)]},
        {"extra_special_tokens": ["<e4>"], "mask_token": AddedToken("<m>", rstrip=True, special=True)},
        {"bos_token": theirs.convert_ids_to_tokens(8)},  # already in the vocabulary
        {},
    ]
    for tokens in steps:
        got = ours.add_special_tokens(tokens, replace_additional_special_tokens=replace)
        assert got == theirs.add_special_tokens(tokens, replace_extra_special_tokens=replace), tokens
        assert_same_state(ours, theirs, TEXTS + ["<e3> x <e4>y<m> z"])
    # unchanged=False: on loading, transformers frames BERT's text with the new cls token; zoo does too
    assert_survives_saving(ours, theirs, tmp_path, TEXTS + ["<e3> x <e4>y<m> z"], unchanged=False)


def test_transformers_added_tokens_read_by_zoo(layout, tmp_path):
    """transformers changes and saves; zoo loads the folder and equals it."""
    theirs = load_hf(layout[1])
    theirs.add_tokens(["brandnew", AddedToken("<E2>", lstrip=True)])
    theirs.add_special_tokens({"pad_token": "<newpad>", "additional_special_tokens": ["<e1>"]})
    theirs.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text((layout[1] / "config.json").read_text())
    assert_same_state(zoo.AutoTokenizer.from_pretrained(tmp_path), theirs)


def test_added_tokens_decode(both):
    ours, theirs = both
    ours.add_tokens(["brandnew", AddedToken("<E2>", lstrip=True)])
    theirs.add_tokens(["brandnew", AddedToken("<E2>", lstrip=True)])
    ours.add_special_tokens({"additional_special_tokens": ["<e1>"]})
    theirs.add_special_tokens({"additional_special_tokens": ["<e1>"]})
    ids = theirs(TEXTS)["input_ids"]
    for skip in (False, True):
        assert [ours.decode(row, skip_special_tokens=skip) for row in ids] == [
            theirs.decode(row, skip_special_tokens=skip) for row in ids]
        assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip)  # a batch
    for row in ids:
        tokens = theirs.convert_ids_to_tokens(row)
        assert ours.convert_ids_to_tokens(row) == tokens
        assert ours.convert_tokens_to_string(tokens) == theirs.convert_tokens_to_string(tokens)
    assert ours.get_added_vocab() == theirs.get_added_vocab()
    assert ours.added_tokens_decoder == theirs.added_tokens_decoder


# --- inputs -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"padding": True, "return_tensors": "pt"},
                                     {"truncation": "longest_first", "max_length": 9, "padding": "max_length"},
                                     {"return_offsets_mapping": True, "return_tensors": "np", "padding": True}])
def test_pairs_in_every_form(both, options):
    """``tok(a, b)``, ``tok([a1, a2], [b1, b2])``, a list of tuples and a list of two-item lists are the same pairs."""
    ours, theirs = both
    if theirs.pad_token is None:
        ours.pad_token = theirs.pad_token = ours.eos_token
    texts, pairs = TEXTS[:4], PAIRS[:4]
    got, _ = assert_same(ours, theirs, texts, pairs, **options)
    for form in (list(zip(texts, pairs)), [[a, b] for a, b in zip(texts, pairs)], [(a, b) for a, b in zip(texts, pairs)]):
        again, _ = assert_same(ours, theirs, form, **options)
        assert {k: _plain(v) for k, v in again.items()} == {k: _plain(v) for k, v in got.items()}
    assert_same(ours, theirs, texts[1], pairs[1], **options)
    assert_same(ours, theirs, [texts[0], (texts[1], pairs[1]), texts[2]], **options)  # pairs mixed with single texts
    words = [t.split() for t in texts]
    assert_same(ours, theirs, [(w, p.split()) for w, p in zip(words, pairs)], is_split_into_words=True, **options)
    assert_same(ours, theirs, [["two", "words"]], is_split_into_words=True, **options)  # words, not a pair


@pytest.mark.parametrize("options", [
    {}, {"padding": True}, {"padding": True, "return_tensors": "pt"}, {"max_length": 5},
    {"max_length": 5, "max_target_length": 7}, {"padding": "max_length", "max_length": 12, "truncation": True},
    {"truncation": True, "padding": "max_length", "max_length": 10, "max_target_length": 8},
])
def test_text_target_gives_labels(both, options):
    ours, theirs = both
    if theirs.pad_token is None:
        ours.pad_token = theirs.pad_token = ours.eos_token
    got, _ = assert_same(ours, theirs, TEXTS[:3], text_target=PAIRS[:3], **options)
    assert "labels" in got
    assert_same(ours, theirs, TEXTS[:3], PAIRS[:3], text_target=PAIRS[3:], text_pair_target=TEXTS[3:], **options)
    assert_same(ours, theirs, TEXTS[1], text_target=PAIRS[1], **options)
    alone, _ = assert_same(ours, theirs, text_target=PAIRS[:3], **options)  # targets alone: their own encoding
    assert "labels" not in alone


def test_model_max_length_drives_truncation(tmp_path, layout, caplog):
    name = layout[0]
    folder = write_layout(tmp_path / name, name, model_max_length=7)
    ours, theirs = load_both(folder)
    assert ours.model_max_length == theirs.model_max_length == 7
    long = "hello world the bugs " * 6
    assert_same(ours, theirs, [long, "hello"], truncation=True)
    assert_same(ours, theirs, [long, "hello"], ["x", "y"], truncation="only_first")
    assert len(ours(long, truncation=True)["input_ids"]) == 7
    with caplog.at_level(logging.WARNING, logger="zoo.tokenization"):
        ours(long, truncation=True)
        assert not caplog.records  # cut: nothing to warn about
        ours([long, long])
        ours(long)
    warned = [r for r in caplog.records if "longer than the specified maximum sequence length" in r.getMessage()]
    assert len(warned) == 1 and "> 7" in warned[0].getMessage()  # once per tokenizer, as transformers does


# --- padding finished encodings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"padding_side": "left"}, {"pad_to_multiple_of": 8},
                                     {"padding": "max_length", "max_length": 30}, {"return_tensors": "pt"},
                                     {"return_tensors": "np"}, {"return_attention_mask": False}, {"padding": False}])
def test_pad_a_list_of_encodings(both, options):
    """tok.pad as a data collator calls it: a list of encodings of different lengths."""
    ours, theirs = both
    if theirs.pad_token is None:
        ours.pad_token = theirs.pad_token = ours.eos_token
    features = [dict(theirs(t, p, return_special_tokens_mask=True)) for t, p in zip(TEXTS, PAIRS)]
    got, expected = ours.pad(features, **options), theirs.pad(features, **options)
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert type(got[key]) is type(value) and _plain(got[key]) == _plain(value), key
    as_dict = {k: [f[k] for f in features] for k in features[0]}
    assert {k: _plain(v) for k, v in ours.pad(as_dict, **options).items()} == {
        k: _plain(v) for k, v in theirs.pad(as_dict, **options).items()}
    one = features[1]
    assert {k: _plain(v) for k, v in ours.pad(one, **options).items()} == {
        k: _plain(v) for k, v in theirs.pad(one, **options).items()}


def test_pad_keeps_tensors_as_tensors(both):
    ours, theirs = both
    if theirs.pad_token is None:
        ours.pad_token = theirs.pad_token = ours.eos_token
    features = [{k: torch.tensor(v) for k, v in theirs(t).items()} for t in TEXTS]
    got, expected = ours.pad(features), theirs.pad(features)
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert isinstance(got[key], torch.Tensor) and torch.equal(got[key], value), key


def test_pad_errors(both):
    ours, _theirs = both
    with pytest.raises(TokenizerError, match="needs 'input_ids'"):
        ours.pad([{"attention_mask": [1]}])
    with pytest.raises(TokenizerError, match="keys differ"):
        ours.pad([{"input_ids": [1]}, {"input_ids": [1, 2], "attention_mask": [1, 1]}])
    ours.pad_token = None
    with pytest.raises(TokenizerError, match="no pad_token"):
        ours.pad([{"input_ids": [1]}, {"input_ids": [1, 2]}])


# --- vocabulary API ---------------------------------------------------------------------------------------------------


def test_vocabulary_api(both):
    ours, theirs = both
    assert ours.get_vocab() == theirs.get_vocab() and ours.vocab_size == theirs.vocab_size and len(ours) == len(theirs)
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours.all_special_tokens == theirs.all_special_tokens and ours.all_special_ids == theirs.all_special_ids
    for text in TEXTS:
        tokens = theirs.tokenize(text)
        assert ours.tokenize(text) == tokens
        assert ours.convert_tokens_to_string(tokens) == theirs.convert_tokens_to_string(tokens)
        assert ours.convert_tokens_to_ids(tokens) == theirs.convert_tokens_to_ids(tokens)
    for pair in (False, True):
        assert ours.num_special_tokens_to_add(pair) == theirs.num_special_tokens_to_add(pair)
    ids = theirs(TEXTS[0])["input_ids"]
    assert ours.get_special_tokens_mask(ids, already_has_special_tokens=True) == theirs.get_special_tokens_mask(
        ids, already_has_special_tokens=True)
    assert ours.batch_decode([]) == theirs.batch_decode([]) == []


def test_model_specific_named_tokens(tmp_path):
    """A ``*_token`` setting (as multimodal tokenizers write ``image_token``) is a named special token, added to the
    vocabulary on loading, readable as an attribute, and written back."""
    folder = write_layout(tmp_path / "gpt2", "gpt2-json", image_token="<image>", extra_special_tokens={"audio_token": "<audio>"})
    ours, theirs = load_both(folder)
    assert ours.image_token == theirs.image_token == "<image>"
    assert ours.image_token_id == theirs.image_token_id and ours.audio_token_id == theirs.audio_token_id
    assert_same_state(ours, theirs, ["an <image> and <audio> x"])
    # unchanged=False: saved with sorted keys, the named tokens come back in another order (in both libraries)
    assert_survives_saving(ours, theirs, tmp_path / "saved", ["an <image> and <audio> x"], unchanged=False)


# --- chat templates ---------------------------------------------------------------------------------------------------

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
          "'\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
WITH_EOS = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello world!"},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "the bugs?"}]


@pytest.mark.parametrize("where", ["tokenizer_config", "jinja-file", "named"])
def test_chat_template_loads_applies_and_saves(tmp_path, where):
    layout_name = "gpt2-json"
    config = {"chat_template": CHATML} if where == "tokenizer_config" else {}
    if where == "named":
        config = {"chat_template": [{"name": "default", "template": CHATML}, {"name": "plain", "template": WITH_EOS}]}
    folder = write_layout(tmp_path / "source", layout_name, **config)
    if where == "jinja-file":
        (folder / "chat_template.jinja").write_text(CHATML, encoding="utf-8")
    ours, theirs = load_both(folder)
    assert ours.chat_template == theirs.chat_template
    for options in ({"tokenize": False}, {"tokenize": False, "add_generation_prompt": True}, {"tokenize": True},
                    {"return_tensors": "pt", "add_generation_prompt": True}):
        got, expected = ours.apply_chat_template(MESSAGES, **options), theirs.apply_chat_template(MESSAGES, **options)
        if isinstance(expected, str):
            assert got == expected
        else:
            assert {k: _plain(v) for k, v in got.items()} == {k: _plain(v) for k, v in expected.items()}
    ours.save_pretrained(tmp_path / "zoo")
    assert (tmp_path / "zoo" / "chat_template.jinja").read_text(encoding="utf-8") == CHATML
    assert "chat_template" not in json.loads((tmp_path / "zoo" / "tokenizer_config.json").read_text())
    (tmp_path / "zoo" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    zoo_again, hf_again = load_both(tmp_path / "zoo")
    assert zoo_again.chat_template == hf_again.chat_template == theirs.chat_template


def test_a_chat_template_set_by_the_user_is_saved(both, tmp_path):
    ours, theirs = both
    ours.chat_template = theirs.chat_template = WITH_EOS
    assert ours.apply_chat_template(MESSAGES, tokenize=False) == theirs.apply_chat_template(MESSAGES, tokenize=False)
    ours.save_pretrained(tmp_path / "zoo")
    assert load_hf(tmp_path / "zoo").chat_template == WITH_EOS


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda t: setattr(t, "pad_token", 5), "pad_token must be a string, a tokenizers.AddedToken or None, got int 5; "
                                           "to set it by id, assign pad_token_id"),
    (lambda t: setattr(t, "pad_token_id", "[PAD]"), "pad_token_id must be an integer id, got str"),
    (lambda t: setattr(t, "pad_token_id", 10**6), r"pad_token_id=1000000 is not an id of this tokenizer \(ids run from 0 to"),
    (lambda t: setattr(t, "eos_token_id", True), "must be an integer id"),
    (lambda t: setattr(t, "additional_special_tokens", "<e1>"), "must be a list of tokens or None, got str"),
    (lambda t: setattr(t, "additional_special_tokens", ["<e1>", 3]), "must be a string, a tokenizers.AddedToken"),
    (lambda t: t.add_tokens(["ok", 3]), "add_tokens takes strings or tokenizers.AddedToken objects; got int 3"),
    (lambda t: t.add_special_tokens({"padding_token": "<p>"}), r"unknown keys \['padding_token'\]"),
    (lambda t: t.add_special_tokens({"pad_token": ["<p>"]}), "pad_token must be a string or a tokenizers.AddedToken"),
    (lambda t: t.add_special_tokens({"additional_special_tokens": "<p>"}), "must be a list of strings"),
    (lambda t: t(text_target=None), "nothing to encode"),
])
def test_bad_changes_are_clear_errors(folders, call, message):
    ours = zoo.AutoTokenizer.from_pretrained(folders["bert-vocab"])
    before = (dict(ours.special_tokens), ours.extra_special_tokens, len(ours))
    with pytest.raises(TokenizerError, match=message):
        call(ours)
    assert (dict(ours.special_tokens), ours.extra_special_tokens, len(ours)) == before  # nothing half-changed
