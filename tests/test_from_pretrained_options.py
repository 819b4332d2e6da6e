"""from_pretrained with the options code written for transformers passes, and loading across heads, against
transformers on the very same files: ``attn_implementation``, ``device_map``, ``use_safetensors``, ``torch_dtype``,
config-field overrides (``output_hidden_states``, ``output_attentions``), a checkpoint of one head loaded into
another (``num_labels=...``: the same weights used and the same ones reported new), ``from_config``, and
generation_config.json read and written for models that generate.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import transformers

import zoo
from tests.checkpoints import assert_outputs_equal
from tests.plugins.test_bert import make_batch, write_checkpoint
from tests.test_model_api import ARCHS, inputs, make, zoo_class
from tests.test_modeling import _rewrite_as_bin, outputs, zoo_warnings
from zoo.errors import ConfigError, DeviceError, ModelFileNotFoundError
from zoo.plugins.bert.config import BertConfig
from zoo.plugins.bert.modeling import BertForMaskedLM, BertForSequenceClassification, BertModel


# --- transformers' loading options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_attn_implementation_sdpa_and_eager_load_the_same_model(tmp_path, attn_implementation):
    hf = write_checkpoint(tmp_path, "masked-lm")
    model = BertForMaskedLM.from_pretrained(tmp_path, attn_implementation=attn_implementation)
    auto = zoo.AutoModelForMaskedLM.from_pretrained(tmp_path, attn_implementation=attn_implementation)
    assert model.config._attn_implementation == attn_implementation
    assert "_attn_implementation" not in model.config.to_json_string()  # kept where transformers keeps it, never saved
    batch = make_batch({})
    assert_outputs_equal(outputs(model, batch), outputs(hf, batch))
    assert_outputs_equal(outputs(auto, batch), outputs(hf, batch))


@pytest.mark.parametrize("kernel", ["flash_attention_2", "flex_attention", "kernels-community/flash-attn", 3])
def test_other_attention_kernels_are_refused_before_weights_are_read(tmp_path, kernel):
    write_checkpoint(tmp_path, "base")
    (tmp_path / "model.safetensors").unlink()  # the error must come before any weight file is looked for
    for load in (BertModel.from_pretrained, zoo.AutoModel.from_pretrained):
        with pytest.raises(ConfigError, match=r"attn_implementation=.* is not available in zoo.*'sdpa'"):
            load(tmp_path, attn_implementation=kernel)
    with pytest.raises(ConfigError, match="is not available in zoo"):
        BertModel.from_config(BertConfig(), attn_implementation=kernel)


@pytest.mark.parametrize("device_map", ["auto", "cpu", 0 if torch.cuda.is_available() else "cpu", {"": "cpu"},
                                        torch.device("cpu")])
def test_device_map_naming_one_device_loads_there(tmp_path, device_map):
    hf = write_checkpoint(tmp_path, "sequence-classification")
    for load in (BertForSequenceClassification.from_pretrained, zoo.AutoModelForSequenceClassification.from_pretrained):
        model = load(tmp_path, device_map=device_map)
        expected = zoo.devices.resolve_device(device_map[""] if isinstance(device_map, dict) else device_map)
        assert {p.device for p in model.parameters()} == {expected}
        batch = {k: v.to(expected) for k, v in make_batch({}).items()}
        torch.testing.assert_close(outputs(model, batch).logits.cpu(), outputs(hf, make_batch({})).logits,
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("device_map", "message"), [
    ({"bert.embeddings": "cpu", "bert.encoder": "cpu", "classifier": "cpu"}, "places parts of the model on different"),
    ({"": "cpu", "classifier": "disk"}, "places parts of the model on different"),
    ("balanced", "spreads a model over several GPUs"),
    ("sequential", "spreads a model over several GPUs"),
])
def test_device_map_splitting_the_model_is_refused(tmp_path, device_map, message):
    write_checkpoint(tmp_path, "sequence-classification")
    for load in (BertForSequenceClassification.from_pretrained, zoo.AutoModelForSequenceClassification.from_pretrained):
        with pytest.raises(DeviceError, match=message):
            load(tmp_path, device_map=device_map)


def test_device_and_device_map_must_agree(tmp_path):
    write_checkpoint(tmp_path, "base")
    assert BertModel.from_pretrained(tmp_path, device="cpu", device_map={"": "cpu"}).device.type == "cpu"
    if torch.cuda.is_available():
        with pytest.raises(DeviceError, match="name different devices"):
            BertModel.from_pretrained(tmp_path, device="cpu", device_map="cuda:0")


def _safetensors_and_a_different_bin(folder: Path):
    """model.safetensors from one seed, pytorch_model.bin from another: which one loaded shows in the outputs."""
    from_bin = write_checkpoint(folder / "bin", "sequence-classification", seed=7)
    from_safetensors = write_checkpoint(folder, "sequence-classification", seed=1)
    torch.save(from_bin.state_dict(), folder / "pytorch_model.bin")
    return from_safetensors, from_bin


def test_use_safetensors_false_loads_the_bin_like_transformers(tmp_path):
    from_safetensors, from_bin = _safetensors_and_a_different_bin(tmp_path)
    batch = make_batch({})
    theirs = transformers.BertForSequenceClassification.from_pretrained(tmp_path, use_safetensors=False).eval()
    assert_outputs_equal(outputs(theirs, batch), outputs(from_bin, batch))  # the reference: transformers read the bin
    for load in (BertForSequenceClassification.from_pretrained, zoo.AutoModelForSequenceClassification.from_pretrained):
        assert_outputs_equal(outputs(load(tmp_path, use_safetensors=False), batch), outputs(from_bin, batch))
        for choice in (None, True):
            assert_outputs_equal(outputs(load(tmp_path, use_safetensors=choice), batch), outputs(from_safetensors, batch))


def test_use_safetensors_refuses_a_folder_without_the_format_asked_for(tmp_path):
    write_checkpoint(tmp_path / "safe", "base")
    with pytest.raises(ModelFileNotFoundError, match="has no pytorch_model.bin.*use_safetensors=False"):
        BertModel.from_pretrained(tmp_path / "safe", use_safetensors=False)
    hf = write_checkpoint(tmp_path / "bin", "base")
    _rewrite_as_bin(tmp_path / "bin", hf)
    with pytest.raises(ModelFileNotFoundError, match="has no model.safetensors.*use_safetensors=True refuses pytorch_model.bin"):
        zoo.AutoModel.from_pretrained(tmp_path / "bin", use_safetensors=True)
    assert_outputs_equal(outputs(BertModel.from_pretrained(tmp_path / "bin"), make_batch({})), outputs(hf, make_batch({})))
    with pytest.raises(ConfigError, match="use_safetensors='yes' is not a bool"):
        BertModel.from_pretrained(tmp_path / "bin", use_safetensors="yes")


def test_torch_dtype_is_dtype_by_its_older_name(tmp_path):
    write_checkpoint(tmp_path, "masked-lm")
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path, torch_dtype=torch.float16)
    for model in (BertForMaskedLM.from_pretrained(tmp_path, torch_dtype=torch.float16),
                  zoo.AutoModelForMaskedLM.from_pretrained(tmp_path, torch_dtype="float16")):
        assert model.dtype == theirs.dtype == torch.float16
        torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight, theirs.bert.embeddings.word_embeddings.weight)
    config = BertConfig(vocab_size=40, hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=8)
    assert BertModel.from_config(config, torch_dtype=torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.parametrize("flag", ["output_hidden_states", "output_attentions"])
def test_output_flags_as_from_pretrained_overrides_match_transformers(tmp_path, flag):
    write_checkpoint(tmp_path, "token-classification")
    theirs = transformers.BertForTokenClassification.from_pretrained(tmp_path, attn_implementation="eager",
                                                                     **{flag: True}).eval()
    model = zoo.AutoModelForTokenClassification.from_pretrained(tmp_path, **{flag: True})
    assert getattr(model.config, flag) is True
    key = flag.removeprefix("output_")
    got, expected = outputs(model, make_batch({})), outputs(theirs, make_batch({}))
    assert got.keys() == list(expected.keys()) == ["logits", key]
    assert_outputs_equal(got, expected)
    assert getattr(outputs(model, {**make_batch({}), flag: False}), key) is None  # an explicit argument wins


# --- a checkpoint of one head loaded into another ---------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "source", "target", "overrides"), [
    ("bert", "masked-lm", "sequence-classification", {"num_labels": 2}),
    ("bert", "pretraining", "token-classification", {"num_labels": 5}),
    ("bert", "sequence-classification", "masked-lm", {}),
    ("roberta", "masked-lm", "sequence-classification", {"num_labels": 2}),
    ("gpt2", "causal-lm", "sequence-classification", {"num_labels": 3}),
    ("gpt2", "base", "causal-lm", {}),
    ("distilbert", "masked-lm", "question-answering", {}),
    ("distilbert", "base", "sequence-classification", {"num_labels": 4}),
])
def test_checkpoint_of_another_head_loads_as_transformers_loads_it(tmp_path, caplog, arch, source, target, overrides):
    make(tmp_path, arch, source)
    caplog.set_level(logging.WARNING)
    model, info = zoo_class(arch, target).from_pretrained(tmp_path, output_loading_info=True, **overrides)
    hf_class = getattr(transformers, ARCHS[arch][2][target])
    theirs, hf_info = hf_class.from_pretrained(tmp_path, output_loading_info=True, **overrides)
    assert sorted(info["missing_keys"]) == sorted(hf_info["missing_keys"])
    assert sorted(info["unexpected_keys"]) == sorted(hf_info["unexpected_keys"])
    if info["missing_keys"]:  # one warning naming every newly initialised weight, as transformers reports them
        (warning,) = zoo_warnings(caplog, "newly initialised")
        assert all(key in warning.getMessage() for key in info["missing_keys"])
    assert model.config.num_labels == theirs.config.num_labels
    # every weight the checkpoint had is the checkpoint's in both; the new ones are freshly initialised, not zero
    ours, reference = model.state_dict(), theirs.state_dict()
    for key, tensor in reference.items():
        if key not in hf_info["missing_keys"]:
            torch.testing.assert_close(ours[key], tensor, atol=0, rtol=0, msg=lambda m: f"{key}: {m}")
        elif key.endswith("weight") and tensor.dim() == 2:
            assert 0 < ours[key].std().item() < 0.1, key
    with torch.no_grad():
        out = model(**inputs(arch))
    assert all(torch.isfinite(t).all() for t in out.to_tuple() if isinstance(t, torch.Tensor))


AUTO_CLASSES = {"pretraining": "AutoModelForPreTraining", "question-answering": "AutoModelForQuestionAnswering",
                "causal-lm": "AutoModelForCausalLM", "sequence-classification": "AutoModelForSequenceClassification"}


@pytest.mark.parametrize(("arch", "task"), [("bert", "pretraining"), ("roberta", "question-answering"),
                                            ("gpt2", "causal-lm"), ("distilbert", "sequence-classification")])
def test_from_config_builds_the_model_transformers_builds(registry_with_entry_points, arch, task):
    config_class, tiny, classes, _ = ARCHS[arch]
    theirs = getattr(transformers, classes[task])(config_class(**tiny))
    config = zoo.AutoConfig.for_model(arch, **tiny)
    for model in (zoo_class(arch, task).from_config(config), getattr(zoo, AUTO_CLASSES[task]).from_config(config)):
        assert type(model).__name__ == type(theirs).__name__
        assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
        assert model.num_parameters() == theirs.num_parameters()
        with torch.no_grad():
            out = model.eval()(**inputs(arch))
        assert all(torch.isfinite(t).all() for t in out.to_tuple() if isinstance(t, torch.Tensor))


def test_models_that_generate_read_and_write_generation_config_json_as_transformers(tmp_path):
    hf = make(tmp_path / "gpt2", "gpt2", "causal-lm")
    hf.generation_config.max_new_tokens, hf.generation_config.eos_token_id = 6, [1, 5]
    hf.save_pretrained(tmp_path / "gpt2")
    model = zoo_class("gpt2", "causal-lm").from_pretrained(tmp_path / "gpt2")
    assert (model.generation_config.max_new_tokens, model.generation_config.eos_token_id) == (6, [1, 5])
    model.generation_config.num_beams = 3
    model.save_pretrained(tmp_path / "zoo")
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path / "zoo")
    assert (theirs.max_new_tokens, theirs.eos_token_id, theirs.num_beams) == (6, [1, 5], 3)
    write_checkpoint(tmp_path / "bert", "masked-lm")
    BertForMaskedLM.from_pretrained(tmp_path / "bert").save_pretrained(tmp_path / "bert-zoo")
    assert not (tmp_path / "bert-zoo" / "generation_config.json").exists()  # an encoder does not generate
