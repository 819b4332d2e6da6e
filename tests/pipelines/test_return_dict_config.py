"""A checkpoint whose config.json says ``"return_dict": false`` (transformers writes it when a user sets it) makes
``model(...)`` return tuples; every pipeline, the sentence embedder and generate must still work and give the same
results as with the default, since they ask for output objects themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import zoo
from tests.pipelines.conftest import labels_config, make_checkpoint
from tests.plugins.test_gpt2 import make_gpt2, write_tokenizer

TASKS = {
    "text-classification": ("sequence-classification", ["I love this", "I hate that"], {}),
    "ner": ("token-classification", ["My name is Wolfgang and I live in Berlin"], labels_config(["O", "B-PER", "B-LOC"])),
    "fill-mask": ("masked-lm", ["Paris is the [MASK] of France."], {}),
    "feature-extraction": ("base", ["Hello world"], {}),
}


def _tuple_config(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "return_dict": False}))


def _same(a, b) -> None:
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    else:
        assert a == b


@pytest.mark.parametrize("task", sorted(TASKS))
def test_pipelines_work_on_a_return_dict_false_checkpoint(tmp_path, task):
    head, inputs, config = TASKS[task]
    make_checkpoint(tmp_path / "dict", head, seed=3, **config)
    make_checkpoint(tmp_path / "tuple", head, seed=3, **config)
    _tuple_config(tmp_path / "tuple")
    assert isinstance(zoo.AutoModel.from_pretrained(tmp_path / "tuple")(torch.tensor([[2, 5, 3]])), tuple)
    _same(zoo.pipeline(task, model=str(tmp_path / "tuple"))(inputs), zoo.pipeline(task, model=str(tmp_path / "dict"))(inputs))


def test_question_answering_and_embedder_on_a_return_dict_false_checkpoint(tmp_path):
    from zoo.embedding import SentenceEmbedder

    for name in ("dict", "tuple"):
        make_checkpoint(tmp_path / name / "qa", "question-answering", seed=1)
        make_checkpoint(tmp_path / name / "base", "base", seed=1)
    for sub in ("qa", "base"):
        _tuple_config(tmp_path / "tuple" / sub)
    qa = {name: zoo.pipeline("question-answering", model=str(tmp_path / name / "qa"))(
        question="Where do I live?", context="My name is Wolfgang and I live in Berlin.") for name in ("dict", "tuple")}
    _same(qa["tuple"], qa["dict"])
    vectors = {name: SentenceEmbedder(str(tmp_path / name / "base")).encode(["a sentence", "another one"])
               for name in ("dict", "tuple")}
    _same(vectors["tuple"], vectors["dict"])


def test_generate_and_text_generation_on_a_return_dict_false_checkpoint(tmp_path):
    for name in ("dict", "tuple"):
        write_tokenizer(tmp_path / name, as_json=True)  # writes its own config.json, which make_gpt2 replaces
        make_gpt2(tmp_path / name, seed=2, vocab_size=400)
    _tuple_config(tmp_path / "tuple")
    models = {name: zoo.AutoModelForCausalLM.from_pretrained(tmp_path / name) for name in ("dict", "tuple")}
    prompt = torch.tensor([[5, 9, 11]])
    _same(models["tuple"].generate(prompt, max_new_tokens=6), models["dict"].generate(prompt, max_new_tokens=6))
    beams = {name: m.generate(prompt, max_new_tokens=5, num_beams=3, return_dict_in_generate=True, output_scores=True)
             for name, m in models.items()}
    _same(beams["tuple"].sequences, beams["dict"].sequences)
    texts = {name: zoo.pipeline("text-generation", model=str(tmp_path / name))("Hello world", max_new_tokens=5)
             for name in ("dict", "tuple")}
    _same(texts["tuple"], texts["dict"])
