"""token-classification against transformers' TokenClassificationPipeline on the same small checkpoints.

Every aggregation strategy is compared on BERT checkpoints of several label schemes (B-/I- tags, bare tags, a
mix) and on a RoBERTa checkpoint (byte-level BPE, where words come from the fallback heuristic): same entities,
words and character offsets, scores within 1e-4.
"""

from __future__ import annotations

import logging

import pytest

import zoo
from zoo.errors import PipelineError
from tests.pipelines.conftest import (LABEL_SCHEMES, assert_records_equal, hf_pipeline, labels_config, make_roberta)

STRATEGIES = ["none", "simple", "first", "average", "max"]
TEXTS = [
    "hello world i love pythons and lovely bugs",
    "the café in naïve über world, 中国 日本 😀 xyzzy hater",
    "i hate bugs. hello pythons! the worlds is a lovely world of python",
    "a",
]


@pytest.mark.parametrize("scheme", sorted(LABEL_SCHEMES))
def test_matches_transformers_for_every_strategy(token_checkpoints, scheme):
    folder = token_checkpoints[scheme]
    ner = zoo.pipeline("ner", model=str(folder))
    for strategy in STRATEGIES:
        got = ner(TEXTS, aggregation_strategy=strategy)
        expected = hf_pipeline("token-classification", folder)(TEXTS, aggregation_strategy=strategy)
        assert_records_equal(got, expected)


def test_strategies_give_different_answers_on_these_texts(token_checkpoints):
    # guards the parity test above: the checkpoint must make the strategies disagree somewhere
    ner = zoo.pipeline("ner", model=str(token_checkpoints["bio"]))
    results = {s: ner(TEXTS, aggregation_strategy=s) for s in STRATEGIES}
    assert len({repr(r) for r in results.values()}) >= 4


@pytest.fixture(scope="module")
def roberta_ner(tmp_path_factory):
    folder = tmp_path_factory.mktemp("roberta-ner")
    make_roberta(folder, "token-classification", seed=2, **labels_config(LABEL_SCHEMES["bio"]))
    return folder


@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")
def test_roberta_words_from_the_fallback_heuristic_match(roberta_ner):
    texts = ["My name is Wolfgang and I live in Berlin", "lovely pythons, hateful bugs café naïve 12345!"]
    ner = zoo.pipeline("ner", model=str(roberta_ner))
    for strategy in STRATEGIES:
        got = ner(texts, aggregation_strategy=strategy)
        expected = hf_pipeline("token-classification", roberta_ner)(texts, aggregation_strategy=strategy)
        assert_records_equal(got, expected)


def test_token_records_have_the_documented_fields_and_offsets(token_checkpoints):
    text = TEXTS[0]
    tokens = zoo.pipeline("ner", model=str(token_checkpoints["plain"]))(text, ignore_labels=[])
    assert [set(t) for t in tokens] == [{"entity", "score", "index", "word", "start", "end"}] * len(tokens)
    assert [t["index"] for t in tokens] == list(range(1, len(tokens) + 1))
    for t in tokens:
        assert text[t["start"]:t["end"]] == t["word"].removeprefix("##")


@pytest.mark.parametrize("ignore", [[], ["O", "PER"], ["LOC"]])
def test_ignore_labels(token_checkpoints, ignore):
    folder = token_checkpoints["plain"]
    got = zoo.pipeline("ner", model=str(folder))(TEXTS, ignore_labels=ignore, aggregation_strategy="simple")
    expected = hf_pipeline("token-classification", folder)(TEXTS, ignore_labels=ignore, aggregation_strategy="simple")
    assert_records_equal(got, expected)
    assert all(e["entity_group"] not in ignore for row in got for e in row)


def test_stride_windows_cover_a_long_text_like_transformers(token_checkpoints):
    folder = token_checkpoints["bio"]
    text = " ".join([TEXTS[0], TEXTS[2]] * 6)  # ~3x the 64-token model
    ner = zoo.pipeline("ner", model=str(folder))
    for strategy in ("simple", "first", "max"):
        got = ner(text, stride=16, aggregation_strategy=strategy)
        expected = hf_pipeline("token-classification", folder)(text, aggregation_strategy=strategy, stride=16)
        assert_records_equal(got, expected)
        assert max(e["end"] for e in got) > len(text) * 0.9  # the entities reach the end of the text


def test_long_text_without_stride_is_truncated_with_a_warning(token_checkpoints, caplog):
    text = " ".join([TEXTS[0]] * 20)
    with caplog.at_level(logging.WARNING):
        got = zoo.pipeline("ner", model=str(token_checkpoints["bio"]))(text, ignore_labels=[])
    assert "truncated" in caplog.text
    assert len(got) == 62  # 64 positions less [CLS] and [SEP]


def test_errors_name_the_problem(token_checkpoints):
    ner = zoo.pipeline("ner", model=str(token_checkpoints["bio"]))
    with pytest.raises(PipelineError, match="aggregation_strategy must be one of"):
        ner("hello", aggregation_strategy="mean")
    with pytest.raises(PipelineError, match="stride runs the whole text"):
        ner("hello", stride=8)
    with pytest.raises(PipelineError, match="stride=64 must be less"):
        ner("hello", stride=64, aggregation_strategy="simple")
    with pytest.raises(PipelineError, match="empty string"):
        ner(["hello", "  "])
    with pytest.raises(PipelineError, match="is None"):
        ner([None])
