"""``zoo convert tf SRC OUT``: the folder it writes loads in transformers (and zoo) with outputs equal to the model
whose weights the TensorFlow files hold, and its tokenizer files load as the release's vocabulary did."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors import safe_open

import zoo
from tests.checkpoints import BERT_VOCAB
from tests.convert import tf_fixtures as F
from tests.convert.tf_fixtures import GPT2_TEXTS, TEXTS, assert_same_outputs, bert_batch, hf_gpt2_tokenizer
from zoo.cli import main
from zoo.convert.cli import convert_tf


@pytest.fixture(scope="session")
def releases(tmp_path_factory):
    return F.build_releases(tmp_path_factory)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["convert", "tf", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def assert_same_tokens(ours, theirs, texts) -> None:
    for text in texts:
        assert ours(text).input_ids == theirs(text).input_ids, text


def test_google_bert_release_converts_to_a_folder_transformers_loads(releases, tmp_path, capsys):
    src, reference = releases["bert-pretraining"]
    status, out, err = run(capsys, src, tmp_path / "out")
    assert status == 0, err
    assert "BertForPreTraining (pretraining)" in out and "skipped" in out
    folder = tmp_path / "out"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"} <= {
        p.name for p in folder.iterdir()}
    theirs = transformers.BertForPreTraining.from_pretrained(folder).eval()
    assert_same_outputs(theirs, reference, bert_batch(), "bert")
    assert_same_outputs(zoo.AutoModelForPreTraining.from_pretrained(folder), reference, bert_batch(1), "bert")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    assert_same_tokens(tokenizer, transformers.BertTokenizer(str(src / "vocab.txt"), do_lower_case=True), TEXTS)
    assert tokenizer.model_max_length == F.TINY_BERT["max_position_embeddings"]
    assert (folder / "vocab.txt").read_text(encoding="utf-8") == (src / "vocab.txt").read_text(encoding="utf-8")


def test_cased_release_and_the_lowercasing_flag(releases, tmp_path, capsys):
    src = releases["bert-classifier"][0]  # cased_...: not lowercased unless asked
    assert run(capsys, src, tmp_path / "cased")[0] == 0
    assert run(capsys, src, tmp_path / "lower", "--do-lower-case")[0] == 0
    vocab = str(src / "vocab.txt")
    assert_same_tokens(transformers.AutoTokenizer.from_pretrained(tmp_path / "cased"),
                       transformers.BertTokenizer(vocab, do_lower_case=False), TEXTS)
    assert_same_tokens(transformers.AutoTokenizer.from_pretrained(tmp_path / "lower"),
                       transformers.BertTokenizer(vocab, do_lower_case=True), TEXTS)
    assert json.loads((tmp_path / "lower" / "tokenizer_config.json").read_text())["do_lower_case"] is True
    reference = releases["bert-classifier"][1]
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "cased").eval()
    assert theirs.config.num_labels == 3
    assert_same_outputs(theirs, reference, bert_batch(), "bert")


def test_openai_gpt2_release_converts_with_its_vocabulary_renamed(releases, tmp_path, capsys):
    src, reference = releases["gpt2"]
    status, out, err = run(capsys, src, tmp_path / "out")
    assert status == 0, err
    folder = tmp_path / "out"
    theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    batch = {"input_ids": torch.randint(1, reference.config.vocab_size, (2, 7)), "attention_mask": torch.ones(2, 7),
             "token_type_ids": None}
    assert_same_outputs(theirs, reference, batch, "gpt2")
    assert (folder / "vocab.json").read_bytes() == (src / "encoder.json").read_bytes()
    assert (folder / "merges.txt").read_bytes() == (src / "vocab.bpe").read_bytes()
    assert (folder / "generation_config.json").exists()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    assert_same_tokens(tokenizer, hf_gpt2_tokenizer(src / "encoder.json", src / "vocab.bpe"), GPT2_TEXTS)
    assert tokenizer.model_max_length == reference.config.n_positions


@pytest.mark.parametrize("model_type, task", [("roberta", "masked-lm"), ("distilbert", "sequence-classification"),
                                              ("gpt2", "sequence-classification"), ("bert", "token-classification")])
def test_tf_model_h5_converts_to_the_head_its_config_names(request, tmp_path, capsys, model_type, task):
    if model_type == "distilbert":
        request.getfixturevalue("registry_with_entry_points")
    reference = F.hf_model(model_type, task, seed=21)
    src = F.write_h5_folder(tmp_path / "tf", reference)
    status, out, err = run(capsys, src, tmp_path / "out")
    assert status == 0, err
    assert f"{type(reference).__name__} ({task})" in out
    theirs = getattr(transformers, type(reference).__name__).from_pretrained(tmp_path / "out").eval()
    batch = bert_batch(3)
    batch["input_ids"] = batch["input_ids"].clamp(min=3)
    assert_same_outputs(theirs, reference, batch, model_type)
    if model_type in ("bert", "distilbert"):  # their vocab.txt came along: a tokenizer is written too
        assert_same_tokens(transformers.AutoTokenizer.from_pretrained(tmp_path / "out"),
                           transformers.BertTokenizer(str(src / "vocab.txt")), TEXTS)


def test_task_and_dtype_options(releases, tmp_path, capsys):
    src, reference = releases["bert-pretraining"]
    assert run(capsys, src, tmp_path / "out", "--task", "base", "--dtype", "float16")[0] == 0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == ["BertModel"]
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as f:
        assert f.get_tensor("embeddings.word_embeddings.weight").dtype == torch.float16
        assert not any(key.startswith("cls.") for key in f.keys())
    theirs = transformers.BertModel.from_pretrained(tmp_path / "out", dtype=torch.float32).eval()
    torch.testing.assert_close(theirs.pooler.dense.weight, reference.bert.pooler.dense.weight.half().float())


def test_convert_tf_returns_what_it_wrote(releases, tmp_path):
    src = releases["bert-squad"][0]
    result = convert_tf(src, tmp_path / "out")
    assert result.model_class == "BertForQuestionAnswering" and result.task == "question-answering"
    assert result.tokenizer and "model.safetensors" in result.files and "tokenizer.json" in result.files
    assert result.missing == [] and result.unused == [] and "global_step" in result.skipped


def test_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "vocab.txt").write_text("\n".join(BERT_VOCAB))
    status, out, err = run(capsys, tmp_path / "src", tmp_path / "out")
    assert status == 1 and err.startswith("zoo: error: ") and "has no TensorFlow weights" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
    assert main(["convert"]) == 2
