"""text-classification (alias sentiment-analysis) against transformers' TextClassificationPipeline."""

from __future__ import annotations

import logging

import pytest

import zoo
from zoo.errors import PipelineError
from tests.pipelines.conftest import assert_records_equal, hf_pipeline, labels_config, make_checkpoint, make_roberta

TEXTS = ["i love python.", "hate bugs", "hello world, the café is naïve and lovely", "a", "中国 日本 😀 " * 4]
SENTIMENT = labels_config(["NEGATIVE", "POSITIVE"])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-classification")
    configs = {
        "sentiment": SENTIMENT,
        "three": labels_config(["neg", "neutral", "pos"]),
        "multi-label": {**labels_config(["a", "b", "c"]), "problem_type": "multi_label_classification"},
        "regression": {"num_labels": 1, "problem_type": "regression"},
    }
    for i, (name, config) in enumerate(configs.items()):
        make_checkpoint(root / name, "sequence-classification", seed=10 + i, **config)
    make_roberta(root / "roberta", "sequence-classification", seed=9, **SENTIMENT)
    return {name: root / name for name in [*configs, "roberta"]}


@pytest.mark.parametrize("name", ["sentiment", "three", "multi-label", "regression", "roberta"])
def test_matches_transformers(checkpoints, name):
    folder = checkpoints[name]
    clf = zoo.pipeline("text-classification", model=str(folder))
    reference = hf_pipeline("text-classification", folder)
    texts = TEXTS if name != "roberta" else ["I love Python.", "Paris is the capital of France.", "bugs"]
    assert_records_equal(clf(texts), reference(texts))
    assert_records_equal(clf(texts[1]), reference(texts[1]))  # a single text: [best]
    for options in ({"top_k": None}, {"top_k": 2}, {"function_to_apply": "sigmoid"}, {"function_to_apply": "none", "top_k": 1}):
        assert_records_equal(clf(texts, **options), reference(texts, **options))
        assert_records_equal(clf(texts[0], **options), reference(texts[0], **options))


def test_text_pairs_match_transformers(checkpoints):
    folder = checkpoints["three"]
    pairs = [{"text": "i love python", "text_pair": "hate bugs"}, {"text": "hello", "text_pair": "world is a café"}]
    clf = zoo.pipeline("text-classification", model=str(folder))
    reference = hf_pipeline("text-classification", folder)
    assert_records_equal(clf(pairs), reference(pairs))
    assert_records_equal(clf(pairs[0]), reference(pairs[0]))
    # pairs and single texts in one call
    assert_records_equal(clf([pairs[0], TEXTS[0], pairs[1]]), [reference(pairs[0]), reference(TEXTS[0])[0], reference(pairs[1])])


def test_sentiment_analysis_alias_and_readme_shape(checkpoints):
    clf = zoo.pipeline("sentiment-analysis", model=str(checkpoints["sentiment"]))
    out = clf(["I love this.", "Terrible."])
    assert [set(r) for r in out] == [{"label", "score"}] * 2
    assert all(r["label"] in ("POSITIVE", "NEGATIVE") and 0.5 <= r["score"] <= 1 for r in out)


def test_long_text_is_truncated_with_a_warning(checkpoints, caplog):
    clf = zoo.pipeline("text-classification", model=str(checkpoints["sentiment"]))
    with caplog.at_level(logging.WARNING):
        out = clf("hello world " * 200)
    assert out[0]["label"] in ("POSITIVE", "NEGATIVE") and "truncated" in caplog.text


@pytest.mark.parametrize("bad, message", [
    ("", "empty string"), (None, "is None"), ([None], "is None"), (["ok", "   "], "empty string"), ([3], "must be a string"),
    ({"text_pair": "x"}, "needs a 'text' key"), ({"text": "x", "text_pair": ""}, "text_pair is an empty string"),
])
def test_bad_input_is_a_clear_error(checkpoints, bad, message):
    with pytest.raises(PipelineError, match=message):
        zoo.pipeline("text-classification", model=str(checkpoints["sentiment"]))(bad)


@pytest.mark.parametrize("options, message", [({"top_k": 0}, "top_k"), ({"function_to_apply": "tanh"}, "function_to_apply"),
                                              ({"topk": 1}, "unknown options")])
def test_bad_options(checkpoints, options, message):
    with pytest.raises(PipelineError, match=message):
        zoo.pipeline("text-classification", model=str(checkpoints["sentiment"]))("hello", **options)
