"""The BERT plugin's tokenizer files against transformers' BertTokenizer: normalizer settings over a tokenizer.json,
added tokens and special tokens written in the config files, and the errors for files that cannot work.

The option-by-option comparison of encoding, decoding and saving is in tests/test_tokenization.py.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from tests.checkpoints import write_bert_vocab
from tests.test_tokenization import TRICKY, assert_same
from zoo.errors import TokenizerError
from zoo.hub.files import LocalFolder
from zoo.plugins.bert.tokenization import align_normalizer, from_files

transformers = pytest.importorskip("transformers")

ADDED_TEXT = ["a newtok [NEW] x newtoks", "hello [MASK] world hello[MASK]world  [MASK]  ", "<pad> [E3] [e3] <PAD>",
              *TRICKY[:4]]


def _hf(folder: Path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoTokenizer.from_pretrained(str(folder), **options)


def _vocab_folder(folder: Path, files: dict | None = None, **config) -> Path:
    write_bert_vocab(folder)
    path = folder / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    for name, content in (files or {}).items():
        (folder / name).write_text(json.dumps(content))
    return folder


def _assert_parity(zoo_tok, hf_tok, texts=ADDED_TEXT):
    assert_same(zoo_tok, hf_tok, texts, padding=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert zoo_tok.get_vocab() == hf_tok.get_vocab() and len(zoo_tok) == len(hf_tok)
    assert zoo_tok.all_special_tokens == hf_tok.all_special_tokens
    assert zoo_tok.all_special_ids == hf_tok.all_special_ids
    ids = hf_tok(texts)["input_ids"]
    for skip in (False, True):
        assert zoo_tok.batch_decode(ids, skip_special_tokens=skip) == hf_tok.batch_decode(ids, skip_special_tokens=skip)


@pytest.fixture
def minilm_copy(minilm, tmp_path):
    """The MiniLM tokenizer files (not the weights) in a folder the test may change."""
    folder = tmp_path / "minilm"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json"):
        shutil.copy(minilm / name, folder / name)
    return folder


# --- normalizer settings over a tokenizer.json ------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{"do_lower_case": False}, {"strip_accents": False}, {"strip_accents": True},
                                     {"tokenize_chinese_chars": False}, {"do_lower_case": True}])
def test_settings_passed_by_the_caller_win_over_tokenizer_json(minilm_copy, options):
    zoo_tok, hf_tok = from_files(LocalFolder(minilm_copy), **options), _hf(minilm_copy, **options)
    assert_same(zoo_tok, hf_tok, TRICKY, return_offsets_mapping=True)


def test_settings_in_tokenizer_config_win_over_tokenizer_json(minilm_copy):
    config = json.loads((minilm_copy / "tokenizer_config.json").read_text())
    (minilm_copy / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    zoo_tok, hf_tok = from_files(LocalFolder(minilm_copy)), _hf(minilm_copy)
    assert zoo_tok.tokenize("HELLO") == hf_tok.tokenize("HELLO") == ["[UNK]"]  # MiniLM's vocabulary is lowercase
    assert_same(zoo_tok, hf_tok, TRICKY)


def test_settings_nobody_wrote_keep_the_files_normalizer(tmp_path):
    """A cased tokenizer.json with no tokenizer_config.json stays cased. transformers would impose BertTokenizer's
    default do_lower_case=True here, overriding the file; zoo trusts the file, which records how the model was
    trained (the one place where zoo does not follow transformers on purpose)."""
    cased = _vocab_folder(tmp_path / "cased", do_lower_case=False)
    _hf(cased).save_pretrained(tmp_path / "json")
    (tmp_path / "json" / "tokenizer_config.json").unlink()
    zoo_tok = from_files(LocalFolder(tmp_path / "json"))
    assert zoo_tok.backend_tokenizer.normalizer.lowercase is False
    assert zoo_tok.tokenize("HELLO world") == ["[UNK]", "world"]


def test_align_normalizer_leaves_other_normalizers_alone():
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import WordLevel

    backend = Tokenizer(WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    assert align_normalizer(backend, {"do_lower_case": False}).normalizer.__class__.__name__ == "Lowercase"
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    assert align_normalizer(backend, {"do_lower_case": True}).normalizer.lowercase is True
    assert align_normalizer(backend, {"do_lower_case": False}).normalizer.lowercase is False


# --- added and special tokens written in the config files -------------------------------------------------------------


def _added_token(content, **flags):
    return {"content": content, "lstrip": False, "rstrip": False, "normalized": True, "single_word": False,
            "special": False, **flags}


@pytest.mark.parametrize("case", [
    {"files": {"added_tokens.json": {"newtok": 88, "[NEW]": 89}}},  # the legacy file
    {"files": {"added_tokens.json": {"newtok": 88, "[E3]": 89}}, "additional_special_tokens": ["[E3]"]},
    {"added_tokens_decoder": {"0": _added_token("[PAD]", normalized=False, special=True),
                              "89": _added_token("[NEW]", normalized=False, special=True),
                              "88": _added_token("newtok")}},
    {"mask_token": {"__type": "AddedToken", **_added_token("[MASK]", lstrip=True, normalized=False, special=True)}},
    {"files": {"special_tokens_map.json": {"mask_token": {"content": "[MASK]", "lstrip": True, "rstrip": True,
                                                          "normalized": False, "single_word": False},
                                           "additional_special_tokens": ["[E3]"]}}},
    {"pad_token": "<pad>"},  # a special token the vocabulary lacks is added after it
    {"extra_special_tokens": ["[E3]", "<new>"]},
], ids=["added_tokens.json", "added_tokens.json-special", "added_tokens_decoder", "lstrip-in-config",
        "special_tokens_map", "pad-not-in-vocab", "extra_special_tokens"])
def test_added_and_special_tokens_from_the_config_files(tmp_path, case):
    folder = _vocab_folder(tmp_path / "vocab", **case)
    zoo_tok, hf_tok = from_files(LocalFolder(folder)), _hf(folder)
    _assert_parity(zoo_tok, hf_tok)
    zoo_tok.save_pretrained(tmp_path / "zoo")  # the tokens survive a save, read by both libraries
    _assert_parity(from_files(LocalFolder(tmp_path / "zoo")), hf_tok)
    _assert_parity(_hf(tmp_path / "zoo"), hf_tok)


def test_a_special_token_passed_as_added_token(tmp_path):
    from tokenizers import AddedToken

    def mask():
        return AddedToken("[MASK]", lstrip=True, rstrip=True, special=True, normalized=False)

    folder = _vocab_folder(tmp_path / "vocab")
    zoo_tok, hf_tok = from_files(LocalFolder(folder), mask_token=mask()), _hf(folder, mask_token=mask())
    assert zoo_tok.mask_token == "[MASK]"
    _assert_parity(zoo_tok, hf_tok)
    zoo_tok.save_pretrained(tmp_path / "zoo")
    _assert_parity(from_files(LocalFolder(tmp_path / "zoo")), hf_tok)


def test_added_tokens_decoder_beside_tokenizer_json(minilm_copy):
    config = json.loads((minilm_copy / "tokenizer_config.json").read_text())
    # as transformers 4 saved it: the special tokens tokenizer.json already has, plus one more
    config["added_tokens_decoder"] = {"30522": _added_token("newtok"),
                                      "101": _added_token("[CLS]", normalized=False, special=True)}
    (minilm_copy / "tokenizer_config.json").write_text(json.dumps(config))
    _assert_parity(from_files(LocalFolder(minilm_copy)), _hf(minilm_copy))


# --- files that cannot work -------------------------------------------------------------------------------------------


def test_a_special_token_missing_from_the_vocabulary_is_named(tmp_path):
    folder = _vocab_folder(tmp_path, unk_token="<unk>")
    with pytest.raises(TokenizerError, match=r"unk_token '<unk>' is not in .*vocab.txt"):
        from_files(LocalFolder(folder))


def test_a_malformed_added_tokens_file_is_named(tmp_path):
    folder = _vocab_folder(tmp_path, files={"added_tokens.json": {"newtok": "eighty-eight"}})
    with pytest.raises(TokenizerError, match="added_tokens.json maps 'newtok'"):
        from_files(LocalFolder(folder))
    folder = _vocab_folder(tmp_path / "2", added_tokens_decoder={"x": {"content": "a"}})
    with pytest.raises(TokenizerError, match="added_tokens_decoder .* is malformed"):
        from_files(LocalFolder(folder))


def test_auto_tokenizer_uses_the_plugin_for_a_vocab_folder(tmp_path):
    from zoo import AutoTokenizer

    folder = _vocab_folder(tmp_path, do_lower_case=False)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    zoo_tok = AutoTokenizer.from_pretrained(folder)
    assert zoo_tok.tokenizer_class == "BertTokenizer"
    assert_same(zoo_tok, _hf(folder), TRICKY, padding=True)
