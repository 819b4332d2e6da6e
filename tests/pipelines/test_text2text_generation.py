"""The seq2seq pipelines (zoo/pipelines/text2text_generation.py): text2text-generation, summarization, translation
(and translation_xx_to_yy) against transformers' own T5 generate + decode on a small random T5 whose config carries
T5's task_specific_params (prefixes and generation lengths), with a T5-layout Unigram tokenizer."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import zoo
from tests.plugins.t5_checkpoints import load_hf, make_t5
from tests.plugins.test_t5_tokenizer import write_folder
from zoo.cli import main
from zoo.errors import PipelineError

TASK_PARAMS = {
    "summarization": {"prefix": "summarize: ", "num_beams": 2, "max_length": 12, "min_length": 3,
                      "no_repeat_ngram_size": 2, "early_stopping": True},
    "translation_en_to_de": {"prefix": "translate English to German: ", "num_beams": 2, "max_length": 10},
    "translation_en_to_fr": {"prefix": "translate English to French: ", "max_length": 8},
}
TEXTS = ["The quick brown fox jumps over the lazy dog.", "My name is Wolfgang and I live in Berlin.",
         "studies have shown that owning a dog is good for you"]


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    """(folder, transformers' model, transformers' tokenizer)."""
    import transformers

    root = tmp_path_factory.mktemp("t5-pipelines")
    tok_folder = write_folder(root / "tokenizer", "t5")
    hf_tok = transformers.T5TokenizerFast.from_pretrained(tok_folder)
    folder = make_t5(root / "model", "t5", scale=0.6, vocab_size=len(hf_tok), num_decoder_layers=2,
                     task_specific_params=TASK_PARAMS)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok_folder / name, folder / name)
    assert json.loads((folder / "config.json").read_text())["task_specific_params"] == TASK_PARAMS
    return folder, load_hf(folder, "t5"), hf_tok


def reference(t5, texts, prefix="", **options):
    """transformers: the texts with the prefix, right-padded, generate, decode without special tokens."""
    _, hf, tok = t5
    batch = tok([prefix + t for t in texts], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = hf.generate(**batch, **options)
    return [tok.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False) for row in out]


def params(key):
    return {k: v for k, v in TASK_PARAMS[key].items() if k != "prefix"}


def test_summarization_applies_the_prefix_and_the_task_params(t5):
    runner = zoo.pipeline("summarization", model=str(t5[0]))
    expected = reference(t5, TEXTS[:1], "summarize: ", **params("summarization"))
    assert runner(TEXTS[0]) == [{"summary_text": expected[0]}]


@pytest.mark.parametrize("pair", ["en_to_de", "en_to_fr"])
def test_translation_xx_to_yy_picks_that_pairs_prefix(t5, pair):
    key = f"translation_{pair}"
    expected = reference(t5, TEXTS[:2], TASK_PARAMS[key]["prefix"], **params(key))
    runner = zoo.pipeline(key, model=str(t5[0]))
    assert runner(TEXTS[:2]) == [{"translation_text": text} for text in expected]  # one result each: flat
    # the same through the plain task with the languages given per call
    plain = zoo.pipeline("translation", model=str(t5[0]))
    src, tgt = pair.split("_to_")
    assert plain(TEXTS[0], src_lang=src, tgt_lang=tgt) == [{"translation_text": expected[0]}]


def test_a_pair_the_model_has_no_params_for_is_refused_with_those_it_has(t5):
    runner = zoo.pipeline("translation_en_to_ro", model=str(t5[0]))
    with pytest.raises(PipelineError, match="no task parameters for translation_en_to_ro.*translation_en_to_de, "
                                            "translation_en_to_fr"):
        runner(TEXTS[0])


def test_text2text_without_params_and_user_options_over_task_params(t5):
    runner = zoo.pipeline("text2text-generation", model=str(t5[0]))
    assert runner(TEXTS[2], max_new_tokens=6) == [{"generated_text": reference(t5, TEXTS[2:], max_new_tokens=6)[0]}]
    summarize = zoo.pipeline("summarization", model=str(t5[0]))
    # a length asked replaces the task's max_length; its other params stay
    options = {**params("summarization"), "max_new_tokens": 5}
    del options["max_length"]
    assert summarize(TEXTS[1], max_new_tokens=5) == [
        {"summary_text": reference(t5, TEXTS[1:2], "summarize: ", **options)[0]}]


def test_batches_with_padding_give_what_each_input_gives_alone(t5):
    alone = zoo.pipeline("summarization", model=str(t5[0]))
    batched = zoo.pipeline("summarization", model=str(t5[0]), batch_size=3)
    assert batched(TEXTS) == [alone(text)[0] for text in TEXTS]


def test_tensors_and_several_sequences(t5):
    runner = zoo.pipeline("translation_en_to_de", model=str(t5[0]))
    _, hf, tok = t5
    batch = tok([TASK_PARAMS["translation_en_to_de"]["prefix"] + TEXTS[0]], return_tensors="pt")
    with torch.no_grad():
        ids = hf.generate(**batch, **params("translation_en_to_de"), num_return_sequences=2)
    assert runner(TEXTS[0], return_tensors=True, num_return_sequences=2) == [
        {"translation_token_ids": row} for row in ids.tolist()]
    two = runner([TEXTS[0], TEXTS[1]], num_return_sequences=2)
    assert len(two) == 2 and all(len(results) == 2 for results in two)  # several results each: a list per input


def test_bad_inputs_and_options_say_what_to_pass(t5):
    runner = zoo.pipeline("summarization", model=str(t5[0]))
    with pytest.raises(PipelineError, match="cannot read inputs of type int"):
        runner(3)
    with pytest.raises(PipelineError, match="must be a string, got int"):
        runner([TEXTS[0], 3])
    with pytest.raises(PipelineError, match="empty string"):
        runner("  ")
    with pytest.raises(PipelineError, match=r"unknown options \['beams'\]"):
        runner(TEXTS[0], beams=2)
    with pytest.raises(PipelineError, match="no encoder-decoder"):
        zoo.pipeline("summarization", model=zoo.AutoModel.from_pretrained(t5[0]), tokenizer=str(t5[0]))


def test_truncation_cuts_long_inputs_to_the_tokenizer_length(t5, caplog):
    runner = zoo.pipeline("text2text-generation", model=str(t5[0]))
    runner.tokenizer.model_max_length = 6
    with caplog.at_level("WARNING", logger="zoo.pipelines.text2text_generation"):
        runner(TEXTS[1], max_new_tokens=3)
    assert "kept whole" in caplog.text
    _, hf, tok = t5
    ids = tok(TEXTS[1], truncation=True, max_length=6, return_tensors="pt")
    with torch.no_grad():
        out = hf.generate(**ids, max_new_tokens=3)
    assert runner(TEXTS[1], max_new_tokens=3, truncation=True) == [
        {"generated_text": tok.decode(out[0], skip_special_tokens=True, clean_up_tokenization_spaces=False)}]


@pytest.mark.parametrize("task, key", [("summarization", "summary"), ("translation_en_to_de", "translation"),
                                       ("text2text-generation", "generated")])
def test_zoo_run_each_task(t5, task, key, capsys):
    assert main(["run", task, "--model", str(t5[0]), "-o", "max_new_tokens=4", TEXTS[0]]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    expected = zoo.pipeline(task, model=str(t5[0]))(TEXTS[0], max_new_tokens=4)
    assert line == expected and list(line[0]) == [f"{key}_text"]
