"""zoo-distilbert: zoo's conformance suite plus parity with transformers on small random checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo.testing import ArchitectureConformance

transformers = pytest.importorskip("transformers")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz.,!?", "hello", "world", "i", "love",
         "this", "terrible", "movie", "a", "second", "rather", "longer", "sentence", "to", "pad", "the", "first", "one",
         "##s", "##ing", "##ed"]
HF_CLASSES = {
    "base": "DistilBertModel",
    "masked-lm": "DistilBertForMaskedLM",
    "sequence-classification": "DistilBertForSequenceClassification",
    "token-classification": "DistilBertForTokenClassification",
    "question-answering": "DistilBertForQuestionAnswering",
}
TINY = dict(vocab_size=len(VOCAB), dim=32, n_layers=2, n_heads=4, hidden_dim=48, max_position_embeddings=64)


def make_distilbert(folder: Path, task: str, seed: int = 0, **overrides):
    """A random transformers DistilBERT for ``task`` with vocab.txt + tokenizer_config.json; returns it in eval mode."""
    torch.manual_seed(seed)
    config = transformers.DistilBertConfig(**{**TINY, **overrides})
    model = getattr(transformers, HF_CLASSES[task])(config).eval()
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "DistilBertTokenizer",
                                                              "do_lower_case": True, "model_max_length": 64}))
    return model


class TestDistilBertConformance(ArchitectureConformance):
    model_type = "distilbert"

    def make_checkpoint(self, folder, task):
        return make_distilbert(folder, task)


CONFIGS = [{}, {"activation": "relu", "n_heads": 2}, {"sinusoidal_pos_embds": True}, {"tie_word_embeddings": False},
           {"num_labels": 5}]


@pytest.mark.parametrize("task, overrides", [(task, cfg) for task in sorted(HF_CLASSES) for cfg in CONFIGS
                                             if not (task == "question-answering" and "num_labels" in cfg)])
def test_every_head_matches_transformers(zoo_registry, tmp_path, task, overrides):
    reference = make_distilbert(tmp_path, task, seed=3, **overrides)
    model = zoo.AutoModel.from_pretrained(tmp_path) if task == "base" else {
        "masked-lm": zoo.AutoModelForMaskedLM, "sequence-classification": zoo.AutoModelForSequenceClassification,
        "token-classification": zoo.AutoModelForTokenClassification,
        "question-answering": zoo.AutoModelForQuestionAnswering}[task].from_pretrained(tmp_path)
    tok = zoo.AutoTokenizer.from_pretrained(tmp_path)
    batch = tok(["hello world", "i love this movie, a longer sentence"], padding=True, return_tensors="pt")
    assert "token_type_ids" not in batch
    with torch.no_grad():
        ours = model(**batch, output_hidden_states=True)
        theirs = reference(**batch, output_hidden_states=True)
    for name in ("last_hidden_state", "logits", "start_logits", "end_logits"):
        if getattr(theirs, name, None) is not None:
            torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), atol=1e-5, rtol=0)
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_question_answering_needs_two_labels(zoo_registry, tmp_path):
    from zoo.errors import ConfigError

    make_distilbert(tmp_path, "base")
    with pytest.raises(ConfigError, match="num_labels must be 2"):
        zoo.AutoModelForQuestionAnswering.from_pretrained(tmp_path, num_labels=3)


def test_losses_match_transformers(zoo_registry, tmp_path):
    reference = make_distilbert(tmp_path, "sequence-classification", num_labels=3)
    model = zoo.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    batch = zoo.AutoTokenizer.from_pretrained(tmp_path)(["hello", "terrible movie"], padding=True, return_tensors="pt")
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        torch.testing.assert_close(model(**batch, labels=labels).loss, reference(**batch, labels=labels).loss, atol=1e-6, rtol=0)


def test_sentiment_pipeline_equals_transformers(zoo_registry, tmp_path):
    make_distilbert(tmp_path, "sequence-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"})
    texts = ["i love this movie", "terrible", "hello world, a rather longer sentence"]
    ours = zoo.pipeline("sentiment-analysis", model=str(tmp_path))(texts)
    theirs = transformers.pipeline("sentiment-analysis", model=str(tmp_path))(texts)
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    for a, b in zip(ours, theirs):
        assert abs(a["score"] - b["score"]) < 1e-4


def test_listed_by_zoo_plugins_with_its_distribution():
    out = subprocess.run([sys.executable, "-m", "zoo", "plugins", "--json"], capture_output=True, text=True, check=True).stdout
    row = next(r for r in json.loads(out) if r["name"] == "distilbert")
    assert row["distribution"] == "zoo-distilbert" and row["version"] == "0.1.0" and not row["error"]
    assert "sequence-classification" in row["architectures"]["distilbert"]


def test_unknown_when_plugins_are_disabled(tmp_path):
    make_distilbert(tmp_path, "base")
    code = f"import zoo; zoo.AutoModel.from_pretrained({str(tmp_path)!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**_env(), "ZOO_LOAD_PLUGINS": ""})
    assert result.returncode != 0
    assert "model_type 'distilbert' is not registered (registered: bert" in result.stderr
    assert "install a plugin" in result.stderr


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "ZOO_LOAD_PLUGINS"}


def test_zoo_core_never_names_this_package():
    core = Path(zoo.__file__).parent
    offenders = [p for p in core.rglob("*.py") if "zoo_distilbert" in p.read_text(encoding="utf-8")]
    assert not offenders
