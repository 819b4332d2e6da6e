"""Config: typed fields, unknown keys kept, JSON identical in meaning to transformers'."""

from __future__ import annotations

import json

import pytest

import zoo
from zoo.configuration import Config, read_json
from zoo.errors import ConfigError, ModelFileNotFoundError, UnknownModelTypeError
from zoo.plugins.bert.config import BertConfig


def test_defaults_match_transformers():
    import transformers

    ours = BertConfig().to_dict()
    theirs = transformers.BertConfig().to_dict()
    for key, value in ours.items():
        if key in theirs and key not in ("architectures",):
            assert theirs[key] == value, key


def test_unknown_keys_are_kept_and_written_back(tmp_path):
    cfg = BertConfig.from_dict({"model_type": "bert", "hidden_size": 64, "num_attention_heads": 4, "my_extra": [1, 2]})
    assert cfg.my_extra == [1, 2]
    cfg.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["my_extra"] == [1, 2] and data["hidden_size"] == 64 and data["model_type"] == "bert"
    assert BertConfig.from_json_file(tmp_path / "config.json") == cfg


def test_transformers_reads_our_config_and_we_read_theirs(tmp_path):
    import transformers

    ours = BertConfig(hidden_size=48, num_attention_heads=6, num_labels=3, problem_type="multi_label_classification")
    ours.save_pretrained(tmp_path / "ours")
    theirs = transformers.AutoConfig.from_pretrained(tmp_path / "ours")
    assert (theirs.hidden_size, theirs.num_labels, theirs.problem_type) == (48, 3, "multi_label_classification")
    assert theirs.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}

    transformers.BertConfig(hidden_size=24, num_attention_heads=2, id2label={0: "NEG", 1: "POS"}).save_pretrained(tmp_path / "theirs")
    back = zoo.AutoConfig.from_pretrained(tmp_path / "theirs")
    assert isinstance(back, BertConfig)
    assert back.id2label == {0: "NEG", 1: "POS"} and back.label2id == {"NEG": 0, "POS": 1} and back.num_labels == 2


def test_num_labels_override_and_id2label_int_keys():
    cfg = BertConfig.from_dict({"id2label": {"0": "A", "1": "B"}}, num_labels=2)
    assert cfg.id2label == {0: "A", 1: "B"}  # same count: the names are kept
    cfg = BertConfig.from_dict({"id2label": {"0": "A", "1": "B"}}, num_labels=3)
    assert cfg.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    with pytest.raises(ConfigError, match="num_labels"):
        BertConfig(num_labels=0)


@pytest.mark.parametrize("field, value", [("hidden_size", "768"), ("num_hidden_layers", 2.5), ("hidden_dropout_prob", "x"),
                                          ("tie_word_embeddings", "yes"), ("hidden_size", True)])
def test_wrong_field_types_are_clear_errors(field, value):
    with pytest.raises(ConfigError, match=field):
        BertConfig.from_dict({field: value})


def test_int_is_accepted_for_float_fields():
    assert BertConfig(hidden_dropout_prob=0).hidden_dropout_prob == 0


def test_bert_specific_validation():
    with pytest.raises(ConfigError, match="multiple"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ConfigError, match="decoder"):
        BertConfig(is_decoder=True)


def test_model_type_mismatch_is_refused():
    with pytest.raises(ConfigError, match="AutoConfig"):
        BertConfig.from_dict({"model_type": "gpt2"})


@pytest.mark.parametrize("text, match", [("{not json", "not valid JSON"), ("[1, 2]", "JSON list"), (b"\xff\xfe", "UTF-8")])
def test_bad_config_json(tmp_path, text, match):
    path = tmp_path / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=match):
        zoo.AutoConfig.from_pretrained(tmp_path)
    assert path.read_bytes() == before


def test_missing_model_type_and_unknown_model_type(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(ConfigError, match="no model_type.*registered: bert"):
        zoo.AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "distilbert"}')
    with pytest.raises(UnknownModelTypeError, match="distilbert.*registered: bert.*plugin"):
        zoo.AutoConfig.from_pretrained(tmp_path)


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        zoo.AutoConfig.from_pretrained(tmp_path / "nope")
    with pytest.raises(ModelFileNotFoundError, match="no config.json"):
        zoo.AutoConfig.from_pretrained(tmp_path)
    with pytest.raises(ModelFileNotFoundError):
        read_json(tmp_path / "absent.json")


def test_for_model_and_base_config():
    cfg = zoo.AutoConfig.for_model("bert", hidden_size=12, num_attention_heads=3)
    assert isinstance(cfg, BertConfig) and cfg.hidden_size == 12
    assert Config().num_labels == 2
    with pytest.raises(TypeError):
        zoo.AutoConfig()
