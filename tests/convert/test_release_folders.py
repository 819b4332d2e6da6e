"""Original release folders (Google's BERT, OpenAI's GPT-2) as zoo reads them without config.json or tokenizer.json:
their configs against transformers' configs of the same files, their tokenizers against transformers'
``BertTokenizer(vocab.txt, do_lower_case)`` and ``GPT2Tokenizer(encoder.json, vocab.bpe)``.

A tokenizer or config needs no weights, so most folders here hold only those files (no TensorFlow run).
"""

from __future__ import annotations

import json
import logging

import pytest
import transformers

import zoo
from tests.checkpoints import BERT_VOCAB
from tests.convert import tf_fixtures as F
from tests.convert.tf_fixtures import GPT2_TEXTS, TEXTS, hf_gpt2_tokenizer
from zoo.convert.release import from_gpt2_hparams, infer_do_lower_case
from zoo.errors import ConfigError

def bert_folder(tmp_path, name: str, **config):
    """A Google-style folder without weights: bert_config.json + vocab.txt."""
    folder = tmp_path / name
    folder.mkdir()
    reference = transformers.BertConfig(**{**F.TINY_BERT, **config})
    (folder / "bert_config.json").write_text(json.dumps(F.bert_config_json(reference)))
    (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    return folder


def gpt2_folder(tmp_path, name: str = "124M"):
    """An OpenAI-style folder without weights: hparams.json + encoder.json + vocab.bpe."""
    folder = tmp_path / name
    folder.mkdir()
    backend = F.train_gpt2_bpe()
    backend.model.save(str(folder))
    (folder / "vocab.json").rename(folder / "encoder.json")
    (folder / "merges.txt").rename(folder / "vocab.bpe")
    hparams = {"n_vocab": backend.get_vocab_size(), "n_ctx": 48, "n_embd": 32, "n_head": 4, "n_layer": 2}
    (folder / "hparams.json").write_text(json.dumps(hparams))
    return folder


def assert_same_tokenization(ours, theirs, texts) -> None:
    for text in texts:
        assert ours(text).input_ids == theirs(text).input_ids, text
        assert ours.tokenize(text) == theirs.tokenize(text), text
        ids = theirs(text).input_ids
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True), text
    pair = ("a first one", "and A Second")
    assert ours(*pair).input_ids == theirs(*pair).input_ids


# --- configs ---------------------------------------------------------------------------------------------------------------


def test_bert_config_json_is_the_bert_config(tmp_path):
    folder = bert_folder(tmp_path, "uncased_L-2_H-32_A-4", hidden_act="gelu_new", intermediate_size=41)
    ours = zoo.AutoConfig.from_pretrained(folder)
    theirs = transformers.BertConfig.from_json_file(folder / "bert_config.json")
    assert type(ours).__name__ == "BertConfig" and ours.model_type == "bert"
    for key in json.loads((folder / "bert_config.json").read_text()):
        assert getattr(ours, key) == getattr(theirs, key), key
    assert zoo.AutoConfig.from_pretrained(folder, num_hidden_layers=1).num_hidden_layers == 1


def test_gpt2_hparams_json_is_the_gpt2_config(tmp_path):
    folder = gpt2_folder(tmp_path)
    hparams = json.loads((folder / "hparams.json").read_text())
    ours = zoo.AutoConfig.from_pretrained(folder)
    # transformers' convert_gpt2_original_tf_checkpoint_to_pytorch.py: n_vocab, n_ctx are vocab_size, n_positions
    theirs = transformers.GPT2Config(vocab_size=hparams["n_vocab"], n_positions=hparams["n_ctx"],
                                     n_embd=hparams["n_embd"], n_head=hparams["n_head"], n_layer=hparams["n_layer"])
    assert type(ours).__name__ == "GPT2Config"
    for key in ("vocab_size", "n_positions", "n_embd", "n_head", "n_layer", "activation_function",
                "layer_norm_epsilon", "n_inner"):
        assert getattr(ours, key) == getattr(theirs, key), key


def test_hparams_json_needs_openais_keys(tmp_path):
    with pytest.raises(ConfigError, match="hparams.json lacks n_ctx, n_head"):
        from_gpt2_hparams({"n_vocab": 10, "n_embd": 8, "n_layer": 1})
    assert from_gpt2_hparams({"n_vocab": 10, "n_ctx": 4, "n_embd": 8, "n_head": 2, "n_layer": 1,
                              "layer_norm_epsilon": 1e-6})["layer_norm_epsilon"] == 1e-6
    folder = gpt2_folder(tmp_path)
    (folder / "hparams.json").write_text(json.dumps({"n_vocab": 10}))
    with pytest.raises(ConfigError, match=r"hparams.json: hparams.json lacks n_ctx"):
        zoo.AutoConfig.from_pretrained(folder)


# --- BERT's tokenizer and do_lower_case --------------------------------------------------------------------------------------

#: Google's release names (google-research/bert README and validate_case_matches_checkpoint) and whether each
#: lowercases; the last three are names that do not say.
GOOGLE_NAMES = [("uncased_L-12_H-768_A-12", True), ("uncased_L-24_H-1024_A-16", True), ("cased_L-12_H-768_A-12", False),
                ("cased_L-24_H-1024_A-16", False), ("multi_cased_L-12_H-768_A-12", False),
                ("multilingual_L-12_H-768_A-12", True), ("chinese_L-12_H-768_A-12", True),
                ("wwm_uncased_L-24_H-1024_A-16", True), ("wwm_cased_L-24_H-1024_A-16", False),
                ("google/bert_uncased_L-2_H-128_A-2", True), ("bert-base-cased", False),
                ("my-finetuned-bert", None), ("L-12_H-768_A-12", None), ("multilingual_model", None)]


@pytest.mark.parametrize("name, lowercases", GOOGLE_NAMES)
def test_do_lower_case_follows_googles_release_names(name, lowercases):
    assert infer_do_lower_case(name) is lowercases


@pytest.mark.parametrize("name, do_lower_case", [("uncased_L-2_H-32_A-4", True), ("cased_L-2_H-32_A-4", False),
                                                 ("chinese_L-2_H-32_A-4", True)])
def test_bert_release_tokenizer_equals_bert_tokenizer_of_its_vocab(tmp_path, name, do_lower_case):
    folder = bert_folder(tmp_path, name)
    theirs = transformers.BertTokenizer(str(folder / "vocab.txt"), do_lower_case=do_lower_case)
    ours = zoo.AutoTokenizer.from_pretrained(folder)
    assert type(ours).__name__ == "BertTokenizer" and ours.model_max_length == F.TINY_BERT["max_position_embeddings"]
    assert_same_tokenization(ours, theirs, TEXTS)
    assert_same_tokenization(zoo.BertTokenizer.from_pretrained(folder), theirs, TEXTS)


def test_do_lower_case_given_wins_over_the_folder_name(tmp_path):
    folder = bert_folder(tmp_path, "uncased_L-2_H-32_A-4")
    theirs = transformers.BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False)
    assert_same_tokenization(zoo.AutoTokenizer.from_pretrained(folder, do_lower_case=False), theirs, TEXTS)


def test_a_name_that_does_not_tell_lowercases_as_berts_default(tmp_path, caplog):
    folder = bert_folder(tmp_path, "my-bert")
    with caplog.at_level(logging.INFO, logger="zoo.convert.release"):
        ours = zoo.AutoTokenizer.from_pretrained(folder)
    assert "cannot tell from the folder name 'my-bert'" in caplog.text
    assert_same_tokenization(ours, transformers.BertTokenizer(str(folder / "vocab.txt")), TEXTS)


def test_a_tokenizer_config_is_read_as_written(tmp_path):
    """A release folder with a tokenizer_config.json (a copy someone saved) is not second-guessed."""
    folder = bert_folder(tmp_path, "uncased_L-2_H-32_A-4")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    theirs = transformers.BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False)
    assert_same_tokenization(zoo.BertTokenizer.from_pretrained(folder), theirs, TEXTS)


# --- GPT-2's tokenizer -------------------------------------------------------------------------------------------------------


def test_gpt2_release_tokenizer_equals_gpt2_tokenizer_of_encoder_json_and_vocab_bpe(tmp_path):
    folder = gpt2_folder(tmp_path)
    theirs = hf_gpt2_tokenizer(folder / "encoder.json", folder / "vocab.bpe")
    for ours in (zoo.AutoTokenizer.from_pretrained(folder), zoo.GPT2Tokenizer.from_pretrained(folder)):
        assert type(ours).__name__ == "GPT2Tokenizer" and ours.model_max_length == 48
        assert ours.eos_token == theirs.eos_token == "<|endoftext|>" and ours.eos_token_id == theirs.eos_token_id
        assert_same_tokenization(ours, theirs, GPT2_TEXTS)


def test_transformers_names_win_over_the_release_names(tmp_path):
    """With vocab.json beside encoder.json, the tokenizer reads vocab.json (the release names are only a fallback)."""
    folder = gpt2_folder(tmp_path)
    vocab = json.loads((folder / "encoder.json").read_text())
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(sorted(vocab, key=vocab.get))}))
    (folder / "encoder.json").write_text(json.dumps({"!": 0}))
    theirs = hf_gpt2_tokenizer(folder / "vocab.json", folder / "vocab.bpe")
    assert_same_tokenization(zoo.AutoTokenizer.from_pretrained(folder), theirs, GPT2_TEXTS)
