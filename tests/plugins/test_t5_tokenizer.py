"""T5's tokenizer (zoo/plugins/t5/tokenization.py) against transformers' T5TokenizerFast on the same folders.

Every folder is written here. The CI one: a Unigram model trained with ``tokenizers`` on a small corpus, laid out as
a T5 repo's tokenizer.json (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, the pieces, then ``<extra_id_99>`` ...
``<extra_id_0>``), with the Metaspace pre-tokenizer, the ``$A </s>`` post-processor and a normalizer that both
libraries drop (transformers keeps only a Precompiled SentencePiece charsmap). Where sentencepiece is installed (it
is not in the test extra), a real spiece.model is trained too and converted by transformers, which gives the
Precompiled normalizer of published T5 files.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest
import transformers

from tests.test_tokenization import assert_same
from zoo.errors import TokenizerError
from zoo.hub import repo_files
from zoo.plugins.t5.tokenization import T5Tokenizer, T5TokenizerFast, from_files

CORPUS = [
    "translate English to German: The house is wonderful. The quick brown fox jumps over the lazy dog.",
    "summarize: studies have shown that owning a dog is good for you, and walking it every day helps too.",
    "My name is Wolfgang and I live in Berlin, where the café is naïve and the beer is cold.",
    "cola sentence: The course is jumping well. stsb sentence1: The rhino grazed on the grass.",
    "Numbers 12345 and 3.14159 appear here, with symbols like @, # and % in the text.",
] * 8

#: sentinels inside words and between them, runs of spaces, tabs and newlines, accents (composed and not), a
#: ligature and characters the vocabulary lacks (unknown), "</s>" and "<pad>" written in the text, the empty string.
TEXTS = [
    "The <extra_id_0> walks in <extra_id_1> park<extra_id_2>.",
    "  leading and trailing spaces   ",
    "tabs\t\tand\nnew\n\nlines\r\n and   runs     of spaces",
    "café naïve e\u0301 ﬁ Ｆｕｌｌ",
    "中文字符 😀 unknown ∑ chars",
    "end</s> of </s>text <pad> and <unk> too",
    "summarize: studies have shown that owning a dog is good for you",
    "",
]
PAIRED = ["second <extra_id_5> part", "the dog", "x", "  spaced   out  ", "café", "ﬁ", "</s>", "a b c"]
SENTINELS = [f"<extra_id_{i}>" for i in range(100)]


def unigram_t5_json() -> str:
    """A tokenizer.json in T5's layout over a Unigram model trained on CORPUS."""
    from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from tokenizers import Tokenizer as Backend

    trained = Backend(models.Unigram())
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trained.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False))
    vocab = [tuple(v) for v in json.loads(trained.to_str())["model"]["vocab"]]
    assert [v[0] for v in vocab[:3]] == ["<pad>", "</s>", "<unk>"]
    vocab += [(token, 0.0) for token in reversed(SENTINELS)]
    backend = Backend(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                           special_tokens=[("</s>", 1)])
    specials = ["<pad>", "</s>", "<unk>", *reversed(SENTINELS)]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return backend.to_str()


T5_CONFIG = {"tokenizer_class": "T5Tokenizer", "extra_ids": 100, "model_max_length": 512,
             "additional_special_tokens": SENTINELS, "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
#: name -> (tokenizer_config.json, config.json's model_type)
CASES = {
    "t5": (T5_CONFIG, "t5"),
    # transformers 4's spelling, the sentinels from extra_ids alone, and the clean-up of decoded text
    "t5-fast-extra-ids": ({"tokenizer_class": "T5TokenizerFast", "extra_ids": 100,
                           "clean_up_tokenization_spaces": True}, "t5"),
    # mT5 and umT5 name no sentinels: the tokenizer.json's added tokens stay, but are no extra special tokens
    "mt5": ({"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "additional_special_tokens": None}, "mt5"),
    "umt5": ({"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "additional_special_tokens": ["<extra_id_0>",
                                                                                             "<extra_id_1>"]}, "umt5"),
}
_JSON: dict[str, str] = {}


def write_folder(folder: Path, case: str) -> Path:
    config, model_type = CASES[case]
    if "unigram" not in _JSON:
        _JSON["unigram"] = unigram_t5_json()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(_JSON["unigram"], encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    return folder


def spiece_folder(folder: Path) -> Path:
    """A real spiece.model trained by sentencepiece, converted to tokenizer.json by transformers."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.txt").write_text("\n".join(CORPUS), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(folder / "corpus.txt"), model_prefix=str(folder / "spiece"),
                                   vocab_size=90, hard_vocab_limit=False, model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   character_coverage=1.0, minloglevel=2)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer", "extra_ids": 100}))
    converted = folder / "converted"
    theirs(folder).save_pretrained(converted)  # from_pretrained converts spiece.model (the constructor would not)
    (converted / "config.json").write_text(json.dumps({"model_type": "t5"}))
    return converted


def ours(folder: Path, **kwargs):
    return from_files(repo_files(folder), **kwargs)


def theirs(folder: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.T5TokenizerFast.from_pretrained(str(folder), **kwargs)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("t5-tokenizers")
    found = {case: write_folder(root / case, case) for case in CASES}
    if importlib.util.find_spec("sentencepiece") is not None:
        found["spiece"] = spiece_folder(root / "spiece")
    return found


@pytest.fixture(params=[*CASES, "spiece"])
def pair(request, folders):
    if request.param not in folders:
        pytest.skip("sentencepiece is not installed (it is no test dependency): no real spiece.model to convert")
    folder = folders[request.param]
    return request.param, ours(folder), theirs(folder)


# --- the tokenizer ----------------------------------------------------------------------------------------------------


def test_the_pipeline_is_the_one_transformers_builds(pair):
    case, zoo_tok, hf_tok = pair
    assert isinstance(zoo_tok, T5Tokenizer) and T5TokenizerFast is T5Tokenizer
    backend, hf_backend = zoo_tok.backend_tokenizer, hf_tok.backend_tokenizer
    for part in ("normalizer", "pre_tokenizer", "decoder", "post_processor"):
        assert repr(getattr(backend, part)) == repr(getattr(hf_backend, part)), (case, part)
    assert (zoo_tok.vocab_size, len(zoo_tok)) == (hf_tok.vocab_size, len(hf_tok))
    assert zoo_tok.get_vocab() == hf_tok.get_vocab()
    assert zoo_tok.special_tokens_map == {k: v for k, v in hf_tok.special_tokens_map.items() if isinstance(v, str)}
    assert (zoo_tok.pad_token_id, zoo_tok.eos_token_id, zoo_tok.unk_token_id) == (0, 1, 2)
    assert zoo_tok.model_max_length == hf_tok.model_max_length
    assert zoo_tok.extra_special_tokens == [str(t) for t in hf_tok.extra_special_tokens]
    assert sorted(zoo_tok.all_special_ids) == sorted(hf_tok.all_special_ids)


def test_sentinel_tokens_sit_at_the_top_of_the_vocabulary(folders):
    tok = ours(folders["t5"])
    assert tok.extra_ids == 100 and tok.get_sentinel_tokens() == SENTINELS
    ids = tok.get_sentinel_token_ids()
    # <extra_id_0> is the last id, <extra_id_99> the first after the SentencePiece pieces
    assert ids == [len(tok) - 1 - i for i in range(100)] == [theirs(folders["t5"]).convert_tokens_to_ids(t)
                                                             for t in SENTINELS]
    assert ours(folders["t5-fast-extra-ids"]).get_sentinel_tokens() == SENTINELS
    assert ours(folders["mt5"]).get_sentinel_tokens() == []
    assert ours(folders["umt5"]).get_sentinel_tokens() == ["<extra_id_0>", "<extra_id_1>"]
    # a list given is taken as written, and extra_ids alone makes the sentinels
    extra = ours(folders["t5"], additional_special_tokens=["<sep>"]).extra_special_tokens
    assert extra == ["<sep>"] == [str(t) for t in theirs(folders["t5"], additional_special_tokens=["<sep>"]).extra_special_tokens]
    assert ours(folders["t5-fast-extra-ids"], extra_ids=3).get_sentinel_tokens() == SENTINELS[:3]


def test_texts_one_by_one(pair):
    case, zoo_tok, hf_tok = pair
    for text in TEXTS:
        assert_same(zoo_tok, hf_tok, text)
        assert_same(zoo_tok, hf_tok, text, add_special_tokens=False, return_special_tokens_mask=True)
        assert zoo_tok.tokenize(text) == hf_tok.tokenize(text), (case, text)
    # the texts are not all unknown pieces: the comparison sees real segmentation
    assert len(set(zoo_tok(TEXTS[6])["input_ids"])) > 10 and zoo_tok.unk_token_id in zoo_tok(TEXTS[4])["input_ids"]


def test_pairs_batches_padding_and_truncation(pair):
    _case, zoo_tok, hf_tok = pair
    assert_same(zoo_tok, hf_tok, TEXTS, PAIRED, return_token_type_ids=True)
    assert_same(zoo_tok, hf_tok, TEXTS, padding=True, return_tensors="pt")
    assert_same(zoo_tok, hf_tok, TEXTS, PAIRED, padding="max_length", truncation=True, max_length=12)
    assert_same(zoo_tok, hf_tok, TEXTS, truncation=True, max_length=5, return_overflowing_tokens=True, stride=1)
    assert_same(zoo_tok, hf_tok, TEXTS, padding=True, padding_side="left", pad_to_multiple_of=8)


def test_text_target_gives_labels(pair):
    _case, zoo_tok, hf_tok = pair
    sources, targets = TEXTS[:4], ["Das Haus ist wunderbar.", "<extra_id_0> dog <extra_id_1>", "", "café"]
    assert_same(zoo_tok, hf_tok, sources, text_target=targets)
    assert_same(zoo_tok, hf_tok, sources, text_target=targets, padding=True, truncation=True, max_length=6,
                return_tensors="pt")
    assert_same(zoo_tok, hf_tok, text_target=targets[1])


def test_decoding(pair):
    case, zoo_tok, hf_tok = pair
    rows = [hf_tok(text)["input_ids"] for text in TEXTS] + [hf_tok(TEXTS[:3], padding=True)["input_ids"][2]]
    for ids in rows:
        for skip in (False, True):
            assert zoo_tok.decode(ids, skip_special_tokens=skip) == hf_tok.decode(ids, skip_special_tokens=skip), \
                (case, ids, skip)
    assert zoo_tok.batch_decode(rows, skip_special_tokens=True) == hf_tok.batch_decode(rows, skip_special_tokens=True)
    assert zoo_tok.convert_ids_to_tokens(rows[0]) == hf_tok.convert_ids_to_tokens(rows[0])


#: add_eos_token is ignored by T5Tokenizer in both libraries: the template always appends </s>
@pytest.mark.parametrize("options", [dict(add_eos_token=False), dict(add_eos_token=True), dict(eos_token="<pad>"),
                                     dict(extra_ids=5, model_max_length=16)])
def test_options_passed_to_from_pretrained(folders, options):
    zoo_tok, hf_tok = ours(folders["t5"], **options), theirs(folders["t5"], **options)
    for text in TEXTS[:6]:
        assert_same(zoo_tok, hf_tok, text, PAIRED[0], return_token_type_ids=True)


# --- files ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["t5", "mt5", "spiece"])
def test_save_pretrained_is_read_back_by_transformers(folders, case, tmp_path):
    if case not in folders:
        pytest.skip("sentencepiece is not installed (it is no test dependency)")
    tok = ours(folders[case])
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "T5Tokenizer"
    hf_tok, again = theirs(tmp_path), ours(tmp_path)
    assert type(again) is T5Tokenizer and again.get_sentinel_tokens() == tok.get_sentinel_tokens()
    for text in TEXTS:
        expected = tok(text, PAIRED[1], text_target=text)
        assert hf_tok(text, PAIRED[1], text_target=text) == expected == again(text, PAIRED[1], text_target=text)


def test_transformers_save_is_read(folders, tmp_path):
    """transformers 5 writes the sentinels as extra_special_tokens and no additional_special_tokens."""
    theirs(folders["t5"]).save_pretrained(tmp_path)
    tok, hf_tok = ours(tmp_path), theirs(tmp_path)
    assert tok.get_sentinel_tokens() == SENTINELS and len(tok) == len(hf_tok)
    for text in TEXTS:
        assert_same(tok, hf_tok, text)


def test_spiece_model_alone_is_a_clear_error(tmp_path):
    (tmp_path / "spiece.model").write_bytes(b"\x0a\x00")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(T5_CONFIG))
    with pytest.raises(TokenizerError, match="no tokenizer.json.*spiece.model.*sentencepiece.*save_pretrained"):
        ours(tmp_path)


def test_wrong_settings_are_clear_errors(folders, tmp_path):
    with pytest.raises(TokenizerError, match="extra_ids must be a non-negative integer"):
        ours(folders["t5"], extra_ids="many")
    from tokenizers import Tokenizer as Backend, models

    Backend(models.WordLevel({"<pad>": 0, "<unk>": 1}, unk_token="<unk>")).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match="needs a Unigram.*WordLevel"):
        ours(tmp_path)


def test_the_class_loads_a_folder(folders):
    tok = T5Tokenizer.from_pretrained(folders["umt5"])
    assert type(tok) is T5Tokenizer and tok(TEXTS[0])["input_ids"] == theirs(folders["umt5"])(TEXTS[0])["input_ids"]


@pytest.mark.parametrize("case", ["t5", "mt5", "umt5"])
def test_auto_tokenizer_resolves_t5(folders, case):
    import zoo
    from zoo.registry import get_registry

    if case not in get_registry().architectures():
        pytest.skip(f"the T5 plugin does not register model_type {case!r} yet")
    tok = zoo.AutoTokenizer.from_pretrained(folders[case])
    assert type(tok) is T5Tokenizer
    assert_same(tok, theirs(folders[case]), TEXTS, PAIRED, text_target=PAIRED)
