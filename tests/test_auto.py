"""The Auto layer: config.json -> model_type -> registry -> the plugin's class for the task, and its errors.

Models come from small transformers checkpoints written at test time, and from the real all-MiniLM-L6-v2 folder.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
import transformers

import zoo
from tests.checkpoints import HF_BERT_CLASSES
from tests.checkpoints import assert_outputs_equal
from tests.plugins.test_bert import make_batch, write_checkpoint
from zoo.errors import ConfigError, ModelFileNotFoundError, TaskNotSupportedError, UnknownModelTypeError
from zoo.plugins.bert.config import BertConfig

AUTO_CLASSES = {
    "base": "AutoModel",
    "pretraining": "AutoModelForPreTraining",
    "masked-lm": "AutoModelForMaskedLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
}


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- models --------------------------------------------------------------------------------------------------------------


def test_auto_config_reads_the_plugin_config(tmp_path):
    write_checkpoint(tmp_path, "sequence-classification", num_labels=4, hidden_act="relu")
    config = zoo.AutoConfig.from_pretrained(tmp_path, num_labels=3)
    assert type(config) is BertConfig
    assert (config.hidden_size, config.hidden_act, config.num_labels) == (32, "relu", 3)
    assert zoo.AutoConfig.for_model("bert", hidden_size=96).hidden_size == 96
    with pytest.raises(TypeError, match="use AutoConfig.from_pretrained"):
        zoo.AutoConfig()


@pytest.mark.parametrize("task", list(AUTO_CLASSES))
def test_each_auto_model_class_loads_the_task_class_and_matches_transformers(tmp_path, task):
    hf = write_checkpoint(tmp_path, task)
    model = getattr(zoo, AUTO_CLASSES[task]).from_pretrained(tmp_path)
    assert type(model).__name__ == HF_BERT_CLASSES[task]
    assert type(model).__module__ == "zoo.plugins.bert.modeling"
    batch = make_batch({})
    with torch.no_grad():
        assert_outputs_equal(model(**batch), hf(**batch))


def test_auto_model_with_lm_head_is_the_masked_lm_class():
    assert zoo.AutoModelWithLMHead is zoo.AutoModelForMaskedLM


def test_auto_model_passes_model_options_and_config_overrides(tmp_path, caplog):
    write_checkpoint(tmp_path, "base")
    caplog.set_level(logging.WARNING)
    model, info = zoo.AutoModelForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, problem_type="multi_label_classification", torch_dtype=torch.bfloat16,
        device="cpu", output_loading_info=True)
    assert model.config.num_labels == 5 and model.config.problem_type == "multi_label_classification"
    assert model.dtype == torch.bfloat16 and model.classifier.out_features == 5
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert any(r.name.startswith("zoo") and "classifier.weight" in r.getMessage() for r in caplog.records)
    config = BertConfig.from_pretrained(tmp_path)
    model = zoo.AutoModel.from_pretrained(tmp_path, config=config, output_hidden_states=True)
    assert model.config.output_hidden_states and len(model(**make_batch({})).hidden_states) == 3


def test_auto_model_from_config_builds_a_fresh_model():
    config = zoo.AutoConfig.for_model("bert", vocab_size=90, hidden_size=32, num_attention_heads=4, num_hidden_layers=1,
                                      num_labels=3)
    model = zoo.AutoModelForTokenClassification.from_config(config)
    assert type(model).__name__ == "BertForTokenClassification"
    assert model(torch.tensor([[2, 7, 3]])).logits.shape == (1, 3, 3)
    with pytest.raises(TypeError, match="AutoModel.from_pretrained"):
        zoo.AutoModel()


def test_task_the_architecture_lacks_names_the_tasks_it_has(tmp_path):
    write_checkpoint(tmp_path, "base")
    before = snapshot(tmp_path)
    with pytest.raises(TaskNotSupportedError, match="model_type 'bert' has no 'causal-lm' model") as caught:
        zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    for task in AUTO_CLASSES:
        assert task in str(caught.value)
    with pytest.raises(TaskNotSupportedError, match="no 'image-classification' model"):
        zoo.AutoModelForImageClassification.from_config(BertConfig())
    assert snapshot(tmp_path) == before


def test_unknown_model_type_lists_the_registered_ones_and_points_at_plugins(tmp_path):
    write_checkpoint(tmp_path, "base")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "not-a-model"}))
    before = snapshot(tmp_path)
    for load in (zoo.AutoModel.from_pretrained, zoo.AutoConfig.from_pretrained):
        with pytest.raises(UnknownModelTypeError, match=r"model_type 'not-a-model' is not registered \(registered: .*bert.*\).*plugin"):
            load(tmp_path)
    # as in transformers, the tokenizer follows tokenizer_config.json's tokenizer_class before config.json
    assert type(zoo.AutoTokenizer.from_pretrained(tmp_path)) is zoo.BertTokenizer
    (tmp_path / "tokenizer_config.json").unlink(missing_ok=True)
    with pytest.raises(UnknownModelTypeError, match=r"model_type 'not-a-model' is not registered"):
        zoo.AutoTokenizer.from_pretrained(tmp_path)
    assert snapshot(tmp_path).items() <= before.items()


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ('{"hidden_size": 32}', "config.json has no model_type.*registered: .*bert"),
        ('{"model_type": ""}', "config.json has no model_type"),
        ("not json at all", "config.json is not valid JSON"),
    ],
)
def test_bad_config_through_auto_is_a_clear_error_and_changes_nothing(tmp_path, config_text, message):
    write_checkpoint(tmp_path, "base")
    (tmp_path / "config.json").write_text(config_text)
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match=message):
        zoo.AutoModel.from_pretrained(tmp_path)
    assert snapshot(tmp_path) == before


def test_missing_folder_through_auto(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        zoo.AutoModelForMaskedLM.from_pretrained(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


# --- the real all-MiniLM-L6-v2 checkpoint --------------------------------------------------------------------------------------

SENTENCES = ["This is an example sentence.", "Each sentence is converted",
             "A considerably longer sentence, so that the others in the batch need padding tokens at the end."]


def test_all_minilm_l6_v2_matches_transformers(minilm):
    model = zoo.AutoModel.from_pretrained(minilm)
    tokenizer = zoo.AutoTokenizer.from_pretrained(minilm)
    assert type(model).__name__ == "BertModel" and model.config.num_hidden_layers == 6
    hf_model = transformers.AutoModel.from_pretrained(minilm).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(minilm)
    batch = tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    hf_batch = hf_tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    assert batch["attention_mask"].min() == 0, "the batch must contain padding"
    for key in hf_batch:
        assert torch.equal(batch[key], hf_batch[key]), key
    with torch.no_grad():
        got = model(**batch)
        expected = hf_model(**hf_batch)
        single = model(**tokenizer(SENTENCES[0], return_tensors="pt"))
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, atol=1e-5, rtol=1e-5)
    n = single.last_hidden_state.shape[1]
    torch.testing.assert_close(got.last_hidden_state[0, :n], single.last_hidden_state[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", r"config\.json holds a JSON list, expected an object"),
        (b'"bert"', r"config\.json holds a JSON string, expected an object"),
        (b"3", r"config\.json holds a JSON number, expected an object"),
        (b"null", r"config\.json holds a JSON null, expected an object"),
        (b'{"model_type": "bert", "x": "\xff\xfe"}', r"config\.json is not UTF-8 text"),
        (b'{"model_type": 5}', r"config\.json has model_type 5, a JSON number where a string belongs; make it the name "
                               r"of an architecture.*registered: .*bert"),
        (b'{"model_type": ["bert"]}', r"config\.json has model_type \['bert'\], a JSON array where a string belongs"),
        (b'{"model_type": null}', r"config\.json has no model_type; add one"),
    ],
)
def test_config_json_that_is_not_an_object_or_lacks_a_string_model_type(tmp_path, content, message):
    write_checkpoint(tmp_path, "base")
    (tmp_path / "config.json").write_bytes(content)
    before = snapshot(tmp_path)
    for load in (zoo.AutoModel.from_pretrained, zoo.AutoConfig.from_pretrained, zoo.AutoModelForMaskedLM.from_pretrained):
        with pytest.raises(ConfigError, match=message):
            load(tmp_path)
    assert snapshot(tmp_path) == before


def test_from_pretrained_keyword_arguments_never_become_config_fields(tmp_path):
    """Every loader refuses the same names the same way; what is accepted is saved only if it is a field."""
    write_checkpoint(tmp_path / "hf", "base")
    loaders = [zoo.AutoModel.from_pretrained, zoo.AutoModelForSequenceClassification.from_pretrained,
               BertConfig.from_pretrained, zoo.AutoConfig.from_pretrained,
               zoo.get_registry().architecture("bert").model_class("base").from_pretrained]
    for load in loaders:
        with pytest.raises(ConfigError, match="unknown keyword argument 'num_lables'.*did you mean 'num_labels'"):
            load(tmp_path / "hf", num_lables=3)
        with pytest.raises(ConfigError, match="trust_remote_code=True .* zoo never runs code .* install a zoo plugin"):
            load(tmp_path / "hf", trust_remote_code=True)
    model = zoo.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf", trust_remote_code=False, num_labels=3)
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "trust_remote_code" not in saved and "num_lables" not in saved and len(saved["id2label"]) == 3
