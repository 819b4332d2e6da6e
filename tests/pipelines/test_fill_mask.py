"""fill-mask against transformers' FillMaskPipeline: BERT ("[MASK]", WordPiece) and RoBERTa ("<mask>", BPE)."""

from __future__ import annotations

import logging

import pytest

import zoo
from zoo.errors import PipelineError
from tests.pipelines.conftest import assert_records_equal, hf_pipeline, make_checkpoint, make_roberta


@pytest.fixture(scope="module")
def bert_mlm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert-mlm")
    make_checkpoint(folder, "masked-lm", seed=4)
    return folder


@pytest.fixture(scope="module")
def roberta_mlm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("roberta-mlm")
    make_roberta(folder, "masked-lm", seed=4)
    return folder


BERT_TEXTS = ["i love [MASK] bugs.", "hello [MASK] world [MASK] is the café", "[MASK]"]
ROBERTA_TEXTS = ["Paris is the <mask> of France.", "My name is <mask> and I live in <mask>.", "I love<mask> bugs"]


@pytest.mark.parametrize("which", ["bert", "roberta"])
def test_matches_transformers(which, bert_mlm, roberta_mlm):
    folder, texts = (bert_mlm, BERT_TEXTS) if which == "bert" else (roberta_mlm, ROBERTA_TEXTS)
    fill = zoo.pipeline("fill-mask", model=str(folder))
    reference = hf_pipeline("fill-mask", folder)
    assert_records_equal(fill(texts), reference(texts))
    assert_records_equal(fill(texts[0], top_k=2), reference(texts[0], top_k=2))
    for text in texts:  # one text at a time too (no padding)
        assert_records_equal(fill(text, top_k=7), reference(text, top_k=7))


@pytest.mark.parametrize("which", ["bert", "roberta"])
def test_targets_match_transformers(which, bert_mlm, roberta_mlm, caplog):
    folder, text, targets = ((bert_mlm, BERT_TEXTS[0], ["python", "bugs", "world", "zzzz"]) if which == "bert"
                             else (roberta_mlm, ROBERTA_TEXTS[0], ["Ġcapital", "ĠParis", " Berlin"]))
    fill = zoo.pipeline("fill-mask", model=str(folder))
    with caplog.at_level(logging.WARNING):
        got = fill(text, targets=targets, top_k=10)
    expected = hf_pipeline("fill-mask", folder)(text, targets=targets, top_k=10)
    assert_records_equal(got, expected)
    assert "not in the vocabulary" in caplog.text


def test_shapes_one_mask_several_masks_and_lists(bert_mlm):
    fill = zoo.pipeline("fill-mask", model=str(bert_mlm))
    one = fill(BERT_TEXTS[0])
    assert isinstance(one, list) and len(one) == 5 and set(one[0]) == {"score", "token", "token_str", "sequence"}
    two = fill(BERT_TEXTS[1], top_k=3)
    assert len(two) == 2 and all(len(row) == 3 for row in two)
    assert [len(r) for r in fill(BERT_TEXTS[:2], top_k=2)] == [2, 2]
    assert one[0]["score"] >= one[1]["score"] >= one[4]["score"]


def test_missing_mask_is_an_error_naming_the_token(bert_mlm, roberta_mlm):
    with pytest.raises(PipelineError, match=r"no mask token \[MASK\]"):
        zoo.pipeline("fill-mask", model=str(bert_mlm))("no mask here")
    with pytest.raises(PipelineError, match="no mask token <mask>"):
        zoo.pipeline("fill-mask", model=str(roberta_mlm))(["Paris is the <mask>.", "Paris is the [MASK]."])


def test_long_text_is_truncated_with_a_warning_and_a_lost_mask_is_an_error(bert_mlm, caplog):
    fill = zoo.pipeline("fill-mask", model=str(bert_mlm))
    long_tail = " hello world" * 60
    with caplog.at_level(logging.WARNING):
        assert len(fill("i love [MASK] bugs." + long_tail)) == 5
    assert "truncated" in caplog.text
    with pytest.raises(PipelineError, match="truncated away"):
        fill(long_tail + " i love [MASK] bugs.")


@pytest.mark.parametrize("options, message", [({"top_k": 0}, "top_k"), ({"targets": []}, "targets"),
                                              ({"topk": 2}, "unknown options")])
def test_bad_options(bert_mlm, options, message):
    with pytest.raises(PipelineError, match=message):
        zoo.pipeline("fill-mask", model=str(bert_mlm))(BERT_TEXTS[0], **options)
