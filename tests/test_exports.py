"""The concrete-class layer: names plugins export at ``zoo.<Name>``, ``Tokenizer`` subclasses, tokenizer_class
resolution without config.json, and ``zoo.set_seed``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
import transformers

import zoo
from zoo.errors import ConfigError, DuplicateRegistrationError
from zoo.registry import Architecture, hookimpl

BUILTIN = {
    "BertTokenizer", "BertTokenizerFast", "BertConfig", "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
    "BertForTokenClassification", "BertForQuestionAnswering", "BertForPreTraining", "GPT2Tokenizer", "GPT2LMHeadModel",
    "GPT2Model", "GPT2Config", "RobertaTokenizer", "RobertaForMaskedLM", "RobertaModel", "ResNetForImageClassification",
    "SimpleCNNModel",
}


def exporting_plugin(model_type: str, exports: dict[str, str]) -> types.ModuleType:
    module = types.ModuleType(f"plugin_{model_type}")

    @hookimpl
    def register_architectures(register):
        register(Architecture(model_type=model_type, config="zoo.plugins.bert.config:BertConfig",
                              models={"base": "zoo.plugins.bert.modeling:BertModel"}, exports=exports))

    module.register_architectures = register_architectures
    return module


def test_import_zoo_and_a_tokenizer_class_import_no_torch():
    code = ("import sys, zoo; from zoo import BertTokenizer, GPT2Tokenizer, RobertaTokenizer; "
            "print('torch' in sys.modules, 'zoo.plugins.bert.modeling' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_every_builtin_export_resolves_to_a_class_of_that_name(isolated_registry):
    exports = isolated_registry.exports()
    assert BUILTIN <= set(exports)
    for name in exports:
        obj = isolated_registry.exported(name)
        assert obj.__name__ == name.removesuffix("Fast")
    assert set(exports) <= set(dir(zoo))


def test_from_zoo_import_the_tutorial_names():
    from zoo import BertForSequenceClassification, BertTokenizer, GPT2LMHeadModel, RobertaTokenizer

    from zoo.plugins.bert.modeling import BertForSequenceClassification as Direct

    assert BertForSequenceClassification is Direct
    assert issubclass(BertTokenizer, zoo.Tokenizer) and issubclass(RobertaTokenizer, zoo.Tokenizer)
    assert issubclass(GPT2LMHeadModel, zoo.PreTrainedModel)
    assert zoo.BertTokenizerFast is BertTokenizer


def test_an_unknown_name_is_an_attribute_error_with_the_closest_match():
    with pytest.raises(AttributeError, match=r"did you mean zoo\.BertForSequenceClassification\?"):
        zoo.BertForSequenceClasification  # noqa: B018
    with pytest.raises(ImportError):
        from zoo import NoSuchModelClass  # noqa: F401
    assert not hasattr(zoo, "_private_probe")


def test_a_name_two_plugins_export_is_an_error_naming_both(isolated_registry):
    first = isolated_registry.register_plugin(exporting_plugin("toy-a", {"ToyModel": "zoo.plugins.bert.modeling:BertModel"}), name="first")
    assert first.error is None
    second = isolated_registry.register_plugin(exporting_plugin("toy-b", {"ToyModel": "zoo.plugins.bert.modeling:BertModel"}), name="second")
    assert "exported by both plugin 'first'" in second.error and "plugin 'second'" in second.error
    assert "toy-b" not in isolated_registry.architectures()  # nothing of the refused plugin is half-registered
    assert isolated_registry.exporter("ToyModel").plugin == "first"
    isolated_registry.unregister_plugin("first")
    assert isolated_registry.exporter("ToyModel") is None


def test_a_builtin_name_cannot_be_taken_by_a_third_party_plugin(isolated_registry):
    record = isolated_registry.register_plugin(exporting_plugin("toy", {"BertModel": "zoo.plugins.bert.modeling:BertModel"}), name="taker")
    assert "exported by both plugin 'zoo.plugins.bert'" in record.error
    with pytest.raises(DuplicateRegistrationError):
        isolated_registry._commit([isolated_registry.architecture("bert")], [])


@pytest.mark.parametrize("exports, problem", [
    ({"not a name": "zoo.plugins.bert.modeling:BertModel"}, "not a public Python identifier"),
    ({"AutoModel": "zoo.plugins.bert.modeling:BertModel"}, "one of zoo's own names"),
    ({"ToyModel": "zoo.plugins.bert.modeling.BertModel"}, "not an import string"),
])
def test_malformed_exports_are_refused_by_name(isolated_registry, exports, problem):
    record = isolated_registry.register_plugin(exporting_plugin("toy", exports), name="bad")
    assert problem in record.error


def test_an_export_that_cannot_be_imported_names_the_plugin(isolated_registry):
    isolated_registry.register_plugin(exporting_plugin("toy", {"ToyGone": "zoo.plugins.bert.modeling:NoSuchClass"}), name="broken")
    with pytest.raises(zoo.errors.PluginError, match="plugin 'broken' exports zoo.ToyGone"):
        isolated_registry.exported("ToyGone")


# --- tokenizer classes --------------------------------------------------------------------------------------------------


def test_bert_tokenizer_class_loads_what_auto_tokenizer_loads(minilm):
    from zoo import BertTokenizer

    ours = BertTokenizer.from_pretrained(minilm)
    auto = zoo.AutoTokenizer.from_pretrained(minilm)
    reference = transformers.BertTokenizer.from_pretrained(minilm)
    assert type(ours) is BertTokenizer and type(auto) is BertTokenizer
    texts = ["Hello, world!", "Zoo's tokenizer classes, at the top level."]
    assert ours(texts, padding=True)["input_ids"] == auto(texts, padding=True)["input_ids"] == \
        reference(texts, padding=True)["input_ids"]


def _bpe_folder(folder, tokenizer_class: str | None, config: bool = False):
    """vocab.json + merges.txt (+ tokenizer_config.json naming ``tokenizer_class``), as old RoBERTa repos ship them."""
    from tokenizers import Tokenizer, pre_tokenizers, trainers
    from tokenizers.models import BPE

    folder.mkdir(parents=True, exist_ok=True)
    backend = Tokenizer(BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(["Hello world, this is a small corpus.", "Another line of text for BPE merges."] * 20, trainer)
    backend.model.save(str(folder))
    if tokenizer_class is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class}))
    if config:
        transformers.BertConfig(vocab_size=backend.get_vocab_size()).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("tokenizer_class", ["RobertaTokenizer", "RobertaTokenizerFast"])
def test_auto_tokenizer_without_config_json_follows_tokenizer_class(tmp_path, tokenizer_class):
    folder = _bpe_folder(tmp_path / "bpe", tokenizer_class)
    ours = zoo.AutoTokenizer.from_pretrained(folder)
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    assert type(ours).__name__ == "RobertaTokenizer"
    texts = ["Hello world, this is text.", "Another line"]
    assert ours(texts, padding=True)["input_ids"] == theirs(texts, padding=True)["input_ids"]
    assert ours.decode(ours("Hello world")["input_ids"]) == theirs.decode(theirs("Hello world")["input_ids"])


def test_tokenizer_class_wins_over_config_model_type_as_in_transformers(tmp_path):
    folder = _bpe_folder(tmp_path / "bpe", "RobertaTokenizer", config=True)  # config.json says bert
    ours, theirs = zoo.AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    assert type(ours).__name__ == "RobertaTokenizer"
    assert ours("Hello world")["input_ids"] == theirs("Hello world")["input_ids"]


def test_gpt2_tokenizer_class_on_a_folder_of_another_model_type(tmp_path):
    folder = _bpe_folder(tmp_path / "bpe", None, config=True)  # config.json says bert, vocab files are BPE
    ours = zoo.GPT2Tokenizer.from_pretrained(folder)
    theirs = transformers.GPT2Tokenizer.from_pretrained(folder)
    assert type(ours) is zoo.GPT2Tokenizer
    assert ours("Hello world, this")["input_ids"] == theirs("Hello world, this")["input_ids"]


def test_an_unknown_tokenizer_class_without_tokenizer_json_says_what_is_missing(tmp_path):
    folder = _bpe_folder(tmp_path / "bpe", "XLMRobertaTokenizer")
    with pytest.raises(ConfigError, match=r"names tokenizer_class 'XLMRobertaTokenizer', which no installed plugin "
                                          r"provides \(tokenizer classes: .*RobertaTokenizer"):
        zoo.AutoTokenizer.from_pretrained(folder)


# --- set_seed ------------------------------------------------------------------------------------------------------------


def test_set_seed_repeats_python_torch_and_numpy_draws():
    def draws():
        return random.random(), torch.rand(3).tolist(), np.random.rand(2).tolist(), torch.randn(2, generator=None).tolist()

    zoo.set_seed(1234)
    first = draws()
    zoo.set_seed(1234)
    assert draws() == first
    transformers.set_seed(1234)
    assert draws() == first  # the same generators, seeded the same way as transformers' set_seed


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "7", True])
def test_set_seed_refuses_what_the_generators_cannot_take(seed):
    with pytest.raises(zoo.ZooError, match="set_seed takes an integer"):
        zoo.set_seed(seed)


def test_tokenizer_loaders_refuse_remote_code_and_drop_use_fast(minilm, tmp_path):
    for load in (zoo.AutoTokenizer.from_pretrained, zoo.BertTokenizer.from_pretrained):
        with pytest.raises(ConfigError, match="trust_remote_code=True was passed, but zoo never runs code"):
            load(minilm, trust_remote_code=True)
        tok = load(minilm, trust_remote_code=False, use_fast=False)
        assert "use_fast" not in tok.init_kwargs and "trust_remote_code" not in tok.init_kwargs
    tok.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert "use_fast" not in saved and "trust_remote_code" not in saved


def test_a_third_party_plugins_classes_appear_only_when_it_is_loaded():
    code = ("import zoo\n"
            "try:\n    from zoo import DistilBertModel\nexcept ImportError:\n    print('absent')\n"
            "else:\n    print(DistilBertModel.__module__)\n"
            "from zoo import BertModel; print(BertModel.__name__)")
    def run(load_plugins: str) -> list[str]:
        env = {**os.environ, "ZOO_LOAD_PLUGINS": load_plugins}
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.split()

    assert run("zoo-distilbert") == ["zoo_distilbert.modeling", "BertModel"]
    assert run("") == ["absent", "BertModel"]  # set but empty: no entry-point plugin; the built-ins stay
