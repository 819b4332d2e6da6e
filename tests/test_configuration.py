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


# --- declared constraints, checked in one pass for every architecture --------------------------------------------------


def _bounded_int_fields(config_class):
    """``{field: Field}`` of the int fields whose Field has a lower bound (sizes, counts)."""
    return {k: spec for k, (annotation, spec, _) in config_class.specs().items()
            if spec is not None and spec.ge is not None and annotation.split(" |")[0] == "int"}


ARCHITECTURES = ["bert", "roberta", "gpt2", "resnet", "simple-cnn"]


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_every_size_of_every_architecture_refuses_zero_negative_and_huge(model_type):
    config_class = zoo.get_registry().architecture(model_type).config_class()
    fields = _bounded_int_fields(config_class)
    if model_type != "resnet":  # ResNet's sizes are lists (checked below)
        assert fields, f"{model_type} declares no bounded sizes"
    for field, spec in fields.items():
        for value in (-3, 0, 10**12):
            if isinstance(spec.ge, int) and value >= spec.ge and value < 10**12:
                continue  # 0 is allowed where the bound says so (pad_token_id)
            with pytest.raises(ConfigError, match=f"{config_class.__name__} field '{field}' is {value}.*allowed: an int >="):
                config_class(**{field: value})


@pytest.mark.parametrize(("model_type", "fields", "message"), [
    ("bert", {"num_hidden_layers": 10**9}, r"'num_hidden_layers' is 1000000000, which is > 1024; allowed: an int >= 1 and <= 1024"),
    ("bert", {"num_hidden_layers": -3}, r"'num_hidden_layers' is -3, which is < 1"),
    ("bert", {"num_attention_heads": 0}, r"'num_attention_heads' is 0, which is < 1"),
    ("bert", {"hidden_size": -32}, r"'hidden_size' is -32, which is < 1"),
    ("bert", {"hidden_size": 30, "num_attention_heads": 4}, r"'hidden_size' is 30, which is not a multiple of num_attention_heads \(4\)"),
    ("bert", {"vocab_size": 10**12}, r"'vocab_size' is 1000000000000, which is > 16777216"),
    ("bert", {"pad_token_id": 90, "vocab_size": 90}, r"'pad_token_id' is 90, which is >= vocab_size \(90\)"),
    ("bert", {"hidden_dropout_prob": 1.5}, r"'hidden_dropout_prob' is 1.5, which is > 1"),
    ("bert", {"layer_norm_eps": float("nan")}, r"'layer_norm_eps' is nan; allowed: a finite number"),
    ("bert", {"id2label": {"a": "x"}}, r"'id2label' is \{'a': 'x'\} \(key 'a' is not a label id\)"),
    ("bert", {"id2label": ["x"]}, r"'id2label' is \['x'\] \(a list\)"),
    ("bert", {"problem_type": "ordinal"}, r"'problem_type' is 'ordinal'; allowed: one of 'regression'"),
    ("gpt2", {"n_embd": 64, "n_head": 5}, r"'n_embd' is 64, which is not a multiple of n_head \(5\)"),
    ("gpt2", {"n_inner": 0}, r"'n_inner' is 0, which is < 1; allowed: an int >= 1 and <= 262144, or null"),
    ("resnet", {"depths": [3, 0]}, r"'depths' is \[3, 0\] \(item 1: 0, which is < 1\)"),
    ("resnet", {"hidden_sizes": [], "depths": []}, r"'hidden_sizes' is \[\] \(0 items\)"),
    ("simple-cnn", {"kernel_size": 40}, r"'kernel_size' is 40, which is > image_size \(32\)"),
])
def test_declared_constraints_name_the_field_its_value_and_what_is_allowed(tmp_path, model_type, fields, message):
    config_class = zoo.get_registry().architecture(model_type).config_class()
    defaults = {"model_type": model_type}
    (tmp_path / "config.json").write_text(json.dumps({**defaults, **fields}, allow_nan=True))
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(ConfigError, match=f"^{tmp_path}/config.json: {config_class.__name__} field {message}"):
        zoo.AutoConfig.from_pretrained(tmp_path)
    assert (tmp_path / "config.json").read_bytes() == before


def test_a_plugin_config_gets_the_checks_from_its_field_declarations():
    from zoo.configuration import Field

    class WidgetConfig(Config):
        model_type = "widget-test"
        width: int = Field(8, ge=1, le=64, divisible_by="groups")
        groups: int = Field(2, ge=1)
        rate: float = Field(0.5, gt=0, lt=1)

    class NarrowWidgetConfig(WidgetConfig):
        width: int = 4  # a new default keeps the parent's constraints

    assert WidgetConfig().width == 8 and NarrowWidgetConfig().width == 4 and WidgetConfig.fields()["rate"] == 0.5
    with pytest.raises(ConfigError, match=r"'width' is 9, which is not a multiple of groups \(2\); allowed: an int >= 1 "
                                          r"and <= 64, a multiple of groups"):
        WidgetConfig(width=9)
    with pytest.raises(ConfigError, match=r"NarrowWidgetConfig field 'width' is 128, which is > 64"):
        NarrowWidgetConfig(width=128)
    with pytest.raises(ConfigError, match=r"'rate' is 1, which is >= 1; allowed: a float > 0 and < 1"):
        WidgetConfig(rate=1)


def test_a_file_key_that_would_replace_a_config_attribute_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "to_dict": 1}))
    with pytest.raises(ConfigError, match="BertConfig cannot keep the key 'to_dict'"):
        zoo.AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "_name_or_path": "x", "my_extra": 2}))
    assert zoo.AutoConfig.from_pretrained(tmp_path).my_extra == 2  # transformers' private keys are kept


@pytest.mark.parametrize("text", ["[" * 100_000, '{"vocab_size": ' + "9" * 5000 + "}"])
def test_json_python_cannot_parse_is_a_config_error(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError, match="config.json is not"):
        zoo.AutoConfig.from_pretrained(tmp_path)


# --- from_pretrained keyword arguments -----------------------------------------------------------------------------------


@pytest.fixture
def bert_folder(tmp_path):
    BertConfig(hidden_size=32, num_attention_heads=4, my_extra=1).save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize("load", ["AutoConfig", "BertConfig"])
def test_unknown_keyword_arguments_are_refused_with_the_closest_name(bert_folder, load):
    loader = zoo.AutoConfig if load == "AutoConfig" else BertConfig
    with pytest.raises(ConfigError, match=r"^from_pretrained got an unknown keyword argument 'num_lables': it is not a "
                                          r"BertConfig field, a key of config.json, a hub option or a loading option; "
                                          r"did you mean 'num_labels'\?$"):
        loader.from_pretrained(bert_folder, num_lables=3)
    with pytest.raises(ConfigError, match=r"'hiden_size'.*did you mean 'hidden_size'"):
        loader.from_pretrained(bert_folder, hiden_size=64)
    with pytest.raises(ConfigError, match=r"'device' is an option of a model's from_pretrained, not a BertConfig field"):
        loader.from_pretrained(bert_folder, device="cpu")
    # fields, num_labels and keys present in the file itself are still overrides
    config = loader.from_pretrained(bert_folder, num_labels=3, hidden_dropout_prob=0.0, my_extra=5)
    assert (config.num_labels, config.hidden_dropout_prob, config.my_extra) == (3, 0.0, 5)


def test_trust_remote_code_true_is_refused_and_false_ignored(bert_folder, tmp_path_factory):
    with pytest.raises(ConfigError, match=r"^trust_remote_code=True was passed, but zoo never runs code from a model "
                                          r"repository; install a zoo plugin that provides model_type 'bert'"):
        zoo.AutoConfig.from_pretrained(bert_folder, trust_remote_code=True)
    config = zoo.AutoConfig.from_pretrained(bert_folder, trust_remote_code=False, low_cpu_mem_usage=True)
    out = tmp_path_factory.mktemp("saved")
    config.save_pretrained(out)
    saved = json.loads((out / "config.json").read_text())
    assert "trust_remote_code" not in saved and "low_cpu_mem_usage" not in saved


def test_a_bad_override_names_the_keyword_argument_not_the_file(bert_folder):
    with pytest.raises(ConfigError, match=r"^from_pretrained\(\.\.\., num_hidden_layers=0\): BertConfig field "
                                          r"'num_hidden_layers' is 0, which is < 1"):
        zoo.AutoConfig.from_pretrained(bert_folder, num_hidden_layers=0)
