"""``from_pretrained(..., from_tf=True)`` against transformers: TensorFlow files holding the weights of small random
transformers models load into zoo models whose outputs equal the source models' within 1e-5, for every head.

The TF1 checkpoints (Google's BERT and OpenAI's GPT-2 layouts, with optimizer slots) are written by TensorFlow in a
subprocess; the tf_model.h5 files (transformers' TF classes) by h5py (tests/convert/tf_fixtures.py). TensorFlow
cannot be imported in this process (tests/convert/conftest.py blocks it).
"""

from __future__ import annotations

import json
import logging
import sys

import pytest
import torch

import zoo
from tests.convert import tf_fixtures as F
from tests.convert.tf_fixtures import assert_same_outputs, bert_batch
from zoo.convert.loader import load_tf_model
from zoo.convert.mapping import TFLayout, TFMapping, plan, resolve_mapping
from zoo.errors import (ConfigError, ModelFileNotFoundError, PluginError, ShapeMismatchError, TFMappingError,
                        UnknownModelTypeError)

AUTO = {"base": zoo.AutoModel, "pretraining": zoo.AutoModelForPreTraining, "masked-lm": zoo.AutoModelForMaskedLM,
        "causal-lm": zoo.AutoModelForCausalLM, "sequence-classification": zoo.AutoModelForSequenceClassification,
        "token-classification": zoo.AutoModelForTokenClassification,
        "question-answering": zoo.AutoModelForQuestionAnswering}


@pytest.fixture(scope="session")
def releases(tmp_path_factory):
    return F.build_releases(tmp_path_factory)


# --- Google's BERT release -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["bert-pretraining", "bert-masked-lm", "bert-classifier", "bert-squad"])
def test_google_bert_release_every_head_equals_the_source_model(releases, key):
    folder, reference = releases[key]
    task = F.RELEASES[key][2]
    model, info = AUTO[task].from_pretrained(folder, from_tf=True, output_loading_info=True)
    assert type(model).__name__ == type(reference).__name__ and not model.training
    assert_same_outputs(model, reference, bert_batch(), "bert")
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert "global_step" in info["skipped"]
    assert sum(name.endswith(("/adam_m", "/adam_v")) for name in info["skipped"]) == 2 * len(
        F.google_bert_variables(reference, adam=False))
    concrete = getattr(zoo, type(reference).__name__).from_pretrained(folder, from_tf=True)
    assert_same_outputs(concrete, reference, bert_batch(1), "bert")


def test_google_masked_lm_decoder_is_tied_to_the_word_embeddings(releases):
    model = zoo.BertForMaskedLM.from_pretrained(releases["bert-masked-lm"][0], from_tf=True)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias


def test_run_classifier_head_gives_the_label_count(releases):
    """run_classifier's output_weights [num_labels, hidden] are the only record of the label count."""
    model = zoo.AutoModelForSequenceClassification.from_pretrained(releases["bert-classifier"][0], from_tf=True)
    assert model.config.num_labels == 3 and model.classifier.weight.shape == (3, 32)


def test_bare_encoder_from_a_pretraining_release_reports_the_unused_heads(releases, caplog):
    folder, reference = releases["bert-pretraining"]
    with caplog.at_level(logging.WARNING):
        model, info = zoo.AutoModel.from_pretrained(folder, from_tf=True, output_loading_info=True)
    assert type(model).__name__ == "BertModel"
    assert_same_outputs(model, reference.bert, bert_batch(), "bert")
    assert set(info["unexpected_keys"]) == {"cls/predictions/output_bias", "cls/predictions/transform/dense/kernel",
                                            "cls/predictions/transform/dense/bias", "cls/predictions/transform/LayerNorm/gamma",
                                            "cls/predictions/transform/LayerNorm/beta", "cls/seq_relationship/output_weights",
                                            "cls/seq_relationship/output_bias"}
    assert "cls/seq_relationship/output_weights" in caplog.text and "not used by BertModel" in caplog.text


def test_head_the_checkpoint_lacks_is_reported_newly_initialised(releases, caplog):
    """The SQuAD checkpoint has no pooler: an encoder with one gets it initialised, with transformers' warning."""
    with caplog.at_level(logging.WARNING):
        model, info = zoo.BertModel.from_pretrained(releases["bert-squad"][0], from_tf=True, output_loading_info=True)
    assert info["missing_keys"] == ["pooler.dense.weight", "pooler.dense.bias"]
    assert info["unexpected_keys"] == ["cls/squad/output_bias", "cls/squad/output_weights"]
    assert "newly initialised: pooler.dense.weight" in caplog.text


def test_shape_mismatch_names_the_tensorflow_variable_and_the_config_field(releases, tmp_path):
    folder = F.copy_release("bert-pretraining", releases, tmp_path)
    config = json.loads((folder / "bert_config.json").read_text())
    (folder / "bert_config.json").write_text(json.dumps({**config, "intermediate_size": 40}))
    with pytest.raises(ShapeMismatchError) as caught:
        zoo.AutoModelForPreTraining.from_pretrained(folder, from_tf=True)
    message = str(caught.value)
    assert "'bert/encoder/layer_0/intermediate/dense/kernel'" in message and "intermediate_size=40" in message
    assert "as [32, 37]; zoo reads it transposed, as [37, 32]" in message
    model = zoo.AutoModelForPreTraining.from_pretrained(folder, from_tf=True, ignore_mismatched_sizes=True)
    assert model.bert.encoder.layer[0].intermediate.dense.weight.shape == (40, 32)


def test_dtype_and_no_tensorflow_in_this_process(releases):
    folder, reference = releases["bert-pretraining"]
    model = zoo.BertForPreTraining.from_pretrained(folder, from_tf=True, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight.float(),
                               reference.bert.embeddings.word_embeddings.weight.bfloat16().float())
    assert not any(name.split(".")[0] in ("tensorflow", "keras", "tf_keras") for name in sys.modules)


def test_a_release_without_from_tf_says_to_pass_it(releases):
    folder = releases["bert-pretraining"][0]
    for load in (zoo.AutoModelForPreTraining.from_pretrained, zoo.BertForPreTraining.from_pretrained):
        with pytest.raises(ModelFileNotFoundError, match=r"from_pretrained\(\.\.\., from_tf=True\)"):
            load(folder)


def test_a_concrete_class_of_another_architecture_is_refused(releases):
    with pytest.raises(ConfigError, match="bert_config.json is the config of a 'bert' release, but model_type 'gpt2'"):
        zoo.GPT2Model.from_pretrained(releases["bert-pretraining"][0], from_tf=True)


def test_progress_bar_over_the_bytes_read(releases, capsys):
    folder, reference = releases["bert-pretraining"]
    model = load_tf_model(None, folder, task="pretraining", progress=True)
    assert "reading bert_model.ckpt.index" in capsys.readouterr().err
    assert_same_outputs(model, reference, bert_batch(), "bert")


# --- OpenAI's GPT-2 release ---------------------------------------------------------------------------------------------


def test_openai_gpt2_release_equals_the_source_model_and_generates_the_same_ids(releases):
    folder, reference = releases["gpt2"]
    model, info = zoo.AutoModelForCausalLM.from_pretrained(folder, from_tf=True, output_loading_info=True)
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert model.lm_head.weight is model.transformer.wte.weight
    batch = {"input_ids": torch.randint(1, reference.config.vocab_size, (2, 8)), "attention_mask": torch.ones(2, 8)}
    batch["attention_mask"][1, :3] = 0
    assert_same_outputs(model, reference, {**batch, "token_type_ids": None}, "gpt2")
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert {"beta1_power", "beta2_power", "model/wte/Adam", "model/h0/attn/c_attn/w/Adam_1"} <= set(info["skipped"])
    prompt = batch["input_ids"][:1, :4]
    with torch.no_grad():
        expected = reference.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
        got = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(got, expected)
    base = zoo.GPT2Model.from_pretrained(folder, from_tf=True)
    assert_same_outputs(base, reference.transformer, {**batch, "token_type_ids": None}, "gpt2")


# --- transformers' TF classes: tf_model.h5 --------------------------------------------------------------------------------

H5_CASES = [(model_type, task) for model_type, tasks in F.HF_CLASSES.items() for task in tasks]


@pytest.mark.parametrize("model_type, task", H5_CASES)
def test_tf_model_h5_every_head_equals_the_source_model(request, tmp_path, model_type, task):
    if model_type == "distilbert":  # a third-party plugin: loaded from its entry point, as a user's process does
        request.getfixturevalue("registry_with_entry_points")
    overrides = {"num_labels": 4} if task in ("sequence-classification", "token-classification") else {}
    reference = F.hf_model(model_type, task, seed=11, **overrides)
    folder = F.write_h5_folder(tmp_path / "tf", reference)
    model, info = AUTO[task].from_pretrained(folder, from_tf=True, output_loading_info=True)
    assert type(model).__name__ == type(reference).__name__
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    batch = bert_batch(2)
    if model_type == "roberta":  # RoBERTa's positions start after its padding id (1): keep real tokens off it
        batch["input_ids"] = batch["input_ids"].clamp(min=3)
    assert_same_outputs(model, reference, batch, model_type)
    concrete = getattr(zoo, type(reference).__name__).from_pretrained(folder, from_tf=True)
    assert_same_outputs(concrete, reference, batch, model_type)


def test_tf_model_h5_without_from_tf_says_to_pass_it(tmp_path):
    folder = F.write_h5_folder(tmp_path / "tf", F.hf_model("bert", "base"))
    with pytest.raises(ModelFileNotFoundError, match=r"holds tf_model.h5 and no PyTorch weights .*from_tf=True"):
        zoo.AutoModel.from_pretrained(folder)
    with pytest.raises(ModelFileNotFoundError, match="from_tf=True"):
        zoo.BertModel.from_pretrained(folder)


def test_missing_and_unmatched_variables_are_reported(tmp_path, caplog):
    reference = F.hf_model("bert", "sequence-classification", seed=5)
    variables = F.keras_variables(reference)
    scope = "tf_bert_for_sequence_classification"
    del variables[f"{scope}/classifier/kernel:0"]
    variables[f"{scope}/bert/encoder/layer_._0/attention/self/query/moving_mean:0"] = variables[
        f"{scope}/bert/encoder/layer_._0/attention/self/query/bias:0"]
    variables[f"{scope}/bert/extra/dense/kernel:0"] = variables[f"{scope}/bert/pooler/dense/kernel:0"]
    folder = F.write_h5_folder(tmp_path / "tf", reference, variables)
    with caplog.at_level(logging.WARNING):
        model, info = zoo.AutoModelForSequenceClassification.from_pretrained(folder, from_tf=True,
                                                                             output_loading_info=True)
    assert info["missing_keys"] == ["classifier.weight"]
    assert set(info["unexpected_keys"]) == {f"{scope}/bert/extra/dense/kernel:0",
                                            f"{scope}/bert/encoder/layer_._0/attention/self/query/moving_mean:0"}
    assert "newly initialised: classifier.weight" in caplog.text
    assert f"{scope}/bert/extra/dense/kernel:0" in caplog.text
    torch.testing.assert_close(model.classifier.bias, reference.classifier.bias)


def test_variables_of_another_architecture_are_refused(tmp_path):
    reference = F.hf_model("bert", "base")
    folder = F.write_h5_folder(tmp_path / "tf", reference)
    config = json.loads((folder / "config.json").read_text())
    gpt2 = F.hf_model("gpt2", "base").config.to_dict()
    (folder / "config.json").write_text(json.dumps({**gpt2, "model_type": "gpt2", "architectures": ["GPT2Model"]}))
    with pytest.raises(TFMappingError, match=r"in none of the TensorFlow layouts model_type 'gpt2' reads .*openai-gpt2"):
        zoo.AutoModel.from_pretrained(folder, from_tf=True)
    assert config["model_type"] == "bert"


def test_an_architecture_without_a_tf_mapping_says_so(tmp_path):
    folder = F.write_h5_folder(tmp_path / "tf", F.hf_model("bert", "base"))
    (folder / "config.json").write_text(json.dumps({"model_type": "simple-cnn"}))
    with pytest.raises(UnknownModelTypeError, match=r"'simple-cnn' .* declares no TensorFlow name mapping.*that can: bert, gpt2"):
        zoo.AutoModel.from_pretrained(folder, from_tf=True)


def test_no_tensorflow_weights_at_all(tmp_path):
    tmp_path.joinpath("config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelFileNotFoundError, match="has no TensorFlow weights: neither tf_model.h5 nor a checkpoint"):
        zoo.AutoModel.from_pretrained(tmp_path, from_tf=True)


# --- the mapping machinery and the plugin hook ------------------------------------------------------------------------------


def test_plan_sorts_variables_into_loaded_skipped_unmatched_and_duplicates():
    from zoo.plugins.bert.tf_mapping import GOOGLE_BERT

    shapes = {"bert/embeddings/word_embeddings": (10, 4), "bert/encoder/layer_3/output/dense/kernel": (8, 4),
              "bert/encoder/layer_3/output/dense/kernel/adam_m": (8, 4), "global_step": (), "bad_steps": (),
              "cls/squad/output_weights": (2, 4), "bert/encoder/layer_3/output/dense/mystery": (4,)}
    result = plan(shapes, GOOGLE_BERT, "test")
    assert {k: (p.tf_name, p.transform, p.shape) for k, p in result.tensors.items()} == {
        "bert.embeddings.word_embeddings.weight": ("bert/embeddings/word_embeddings", "none", (10, 4)),
        "bert.encoder.layer.3.output.dense.weight": ("bert/encoder/layer_3/output/dense/kernel", "transpose", (4, 8)),
        "qa_outputs.weight": ("cls/squad/output_weights", "none", (2, 4))}
    assert result.skipped == ["bad_steps", "bert/encoder/layer_3/output/dense/kernel/adam_m", "global_step"]
    assert result.unmatched == ["bert/encoder/layer_3/output/dense/mystery"]
    assert result.task() == "question-answering"
    with pytest.raises(TFMappingError, match="only a 2-axis kernel can be"):
        plan({"bert/encoder/layer_0/output/dense/kernel": (2, 3, 4)}, GOOGLE_BERT, "test")


@pytest.mark.parametrize("layout, name, expected", [
    ("bert.TRANSFORMERS_TF_BERT", "tf_bert_for_pre_training/mlm___cls/predictions/transform/dense/kernel:0",
     ("cls.predictions.transform.dense.weight", "transpose")),
    # a sharded tf_model.h5 stores names without the model's scope
    ("bert.TRANSFORMERS_TF_BERT", "bert/encoder/layer_._11/output/LayerNorm/gamma:0",
     ("bert.encoder.layer.11.output.LayerNorm.weight", "none")),
    ("gpt2.TRANSFORMERS_TF_GPT2", "tf_gpt2_lm_head_model/transformer/h_._1/attn/c_attn/bias:0",
     ("transformer.h.1.attn.c_attn.bias", "squeeze")),
    ("gpt2.TRANSFORMERS_TF_GPT2", "tf_gpt2_model/transformer/wte/weight:0", ("transformer.wte.weight", "none")),
    ("gpt2.OPENAI_GPT2", "model/h10/mlp/c_proj/w", ("transformer.h.10.mlp.c_proj.weight", "squeeze")),
    ("gpt2.OPENAI_GPT2", "model/wpe", ("transformer.wpe.weight", "squeeze")),
    ("bert.GOOGLE_BERT", "output_weights", ("classifier.weight", "none")),
    ("bert.GOOGLE_BERT", "bert/pooler/dense/kernel", ("bert.pooler.dense.weight", "transpose")),
])
def test_layouts_translate_names(layout, name, expected):
    import importlib

    module, _, attr = layout.partition(".")
    assert getattr(importlib.import_module(f"zoo.plugins.{module}.tf_mapping"), attr).translate(name) == expected


def test_a_tf_mapping_is_validated_when_declared():
    with pytest.raises(PluginError, match=r"pattern '\(' that is not a regex"):
        TFMapping("demo", (TFLayout("x", "demo", detect="("),))
    with pytest.raises(PluginError, match="maps leaf 'w' to"):
        TFMapping("demo", (TFLayout("x", "demo", detect="a", leaves={"w": ("weight", "rotate")}),))
    with pytest.raises(PluginError, match="layouts must be a non-empty tuple"):
        TFMapping("demo", ())
    with pytest.raises(PluginError, match="is the one of model_type 'bert'"):
        resolve_mapping("zoo.plugins.bert.tf_mapping:TF_MAPPING", "gpt2")
    with pytest.raises(PluginError, match="not a zoo.convert.mapping.TFMapping"):
        resolve_mapping("zoo.plugins.bert.tf_mapping:GOOGLE_BERT", "bert")


def test_the_registry_refuses_a_tf_mapping_that_is_not_an_import_string(isolated_registry):
    from zoo.registry import Architecture, hookimpl

    class Plugin:
        @hookimpl
        def register_architectures(self, register):
            register(Architecture(model_type="demo-tf", config="zoo.plugins.bert.config:BertConfig",
                                  models={"base": "zoo.plugins.bert.modeling:BertModel"}, tf_mapping="not a spec"))

    record = isolated_registry.register_plugin(Plugin(), name="demo-tf")
    assert record.error is not None and "tf_mapping 'not a spec' is not an import string" in record.error


def test_a_third_party_plugin_declares_its_own_mapping(isolated_registry, tmp_path):
    """A plugin's own name layout, through the same hook: BERT's classes as model_type 'legacy-bert', whose TF
    names are 'legacy/encoder_stack/block_N/...', 'legacy/embed/...', 'legacy/pool/...'."""
    from zoo.plugins.bert.config import BertConfig
    from zoo.registry import Architecture, hookimpl

    class LegacyBertConfig(BertConfig):
        model_type = "legacy-bert"

    layout = TFLayout("legacy", "a renamed TF BERT", detect=r"^legacy/encoder_stack/",
                      renames=((r"^legacy/", ""), (r"^encoder_stack/block_(\d+)/", r"bert/encoder/layer/\1/"),
                               (r"^embed/", "bert/embeddings/"), (r"^pool/", "bert/pooler/")))

    class Plugin:
        @hookimpl
        def register_architectures(self, register):
            register(Architecture(model_type="legacy-bert", config=LegacyBertConfig,
                                  models={"base": "zoo.plugins.bert.modeling:BertModel"},
                                  tf_mapping=TFMapping("legacy-bert", (layout,))))

    assert isolated_registry.register_plugin(Plugin(), name="legacy").error is None
    reference = F.hf_model("bert", "base", seed=8)
    renamed = {}
    for name, array in F.keras_variables(reference).items():
        for theirs, ours in (("tf_bert_model/bert/encoder/layer_._", "legacy/encoder_stack/block_"),
                             ("tf_bert_model/bert/embeddings/", "legacy/embed/"),
                             ("tf_bert_model/bert/pooler/", "legacy/pool/")):
            name = name.replace(theirs, ours)
        renamed[name] = array
    F.write_keras_h5(tmp_path / "tf_model.h5", renamed)
    (tmp_path / "config.json").write_text(json.dumps({**reference.config.to_dict(), "model_type": "legacy-bert"}))
    model, info = zoo.AutoModel.from_pretrained(tmp_path, from_tf=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert_same_outputs(model, reference, bert_batch(), "bert")
