"""feature-extraction against transformers' FeatureExtractionPipeline, and its pooled vectors against zoo.embedding.

transformers returns ``[1, T, H]`` nested lists, padded to the longest text of the batch when batching; zoo
returns ``(T, H)`` tensors without the padding, so the comparison takes transformers' first T rows.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import PipelineError
from tests.pipelines.conftest import hf_pipeline, make_checkpoint, make_roberta

TEXTS = ["hello world", "i love python and hate bugs, the world is a café", "a", "the naïve über 中国 😀 " * 3]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert-base")
    make_checkpoint(folder, "base", seed=6)
    return folder


def reference(folder, texts, batch_size=1):
    rows = hf_pipeline("feature-extraction", folder)(texts, batch_size=batch_size, return_tensors=True)
    return [torch.as_tensor(r)[0] for r in rows]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_token_vectors_match_transformers(encoder, batch_size):
    got = zoo.pipeline("feature-extraction", model=str(encoder))(TEXTS, batch_size=batch_size)
    expected = reference(encoder, TEXTS, batch_size=batch_size)
    for g, e in zip(got, expected):
        assert isinstance(g, torch.Tensor) and g.shape[1] == 32
        torch.testing.assert_close(g, e[: g.shape[0]], atol=1e-5, rtol=1e-5)
    assert [g.shape[0] for g in got] == [len(ids) for ids in zoo.AutoTokenizer.from_pretrained(encoder)(TEXTS)["input_ids"]]


def test_roberta_token_vectors_match_transformers(tmp_path):
    make_roberta(tmp_path, "base", seed=6)
    texts = ["Paris is the capital of France.", "Hello world!", "My name is Wolfgang and I live in Berlin"]
    got = zoo.pipeline("feature-extraction", model=str(tmp_path))(texts, batch_size=2)
    for g, e in zip(got, reference(tmp_path, texts)):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
@pytest.mark.parametrize("normalize", [False, True])
def test_pooling_matches_pooling_the_token_vectors(encoder, pooling, normalize):
    extract = zoo.pipeline("feature-extraction", model=str(encoder))
    tokens = extract(TEXTS)
    pooled = extract(TEXTS, pooling=pooling, normalize=normalize, batch_size=2)
    for t, p in zip(tokens, pooled):
        assert p.shape == (32,)
        expected = {"mean": t.mean(0), "cls": t[0], "max": t.max(0).values}[pooling]
        if normalize:
            expected = torch.nn.functional.normalize(expected, dim=0)
            assert float(p.norm()) == pytest.approx(1.0, abs=1e-5)
        torch.testing.assert_close(p, expected, atol=1e-5, rtol=1e-5)


def test_results_are_ordinary_tensors(encoder):
    out = zoo.pipeline("feature-extraction", model=str(encoder))(TEXTS[:2], pooling="mean")
    assert not torch.is_inference(out[0])
    (torch.nn.Linear(32, 1)(torch.stack(out)).sum()).backward()  # usable as inputs of a trained layer


def test_numpy_output_and_single_input(encoder):
    extract = zoo.pipeline("feature-extraction", model=str(encoder), return_tensors="np")
    one = extract(TEXTS[0])
    assert isinstance(one, np.ndarray) and one.dtype == np.float32 and one.shape == (4, 32)
    assert isinstance(extract(TEXTS[0], pooling="mean"), np.ndarray)


def test_sentence_embeddings_equal_zoo_embedding(minilm):
    from zoo.embedding import SentenceEmbedder

    sentences = ["A man is eating food.", "A monkey is playing drums.", "Someone in a gorilla costume is playing a set of drums."]
    vectors = zoo.pipeline("feature-extraction", model=str(minilm))(sentences, pooling="mean", normalize=True)
    torch.testing.assert_close(torch.stack(vectors), SentenceEmbedder(minilm).encode(sentences), atol=1e-5, rtol=1e-5)


def test_real_minilm_matches_transformers(minilm):
    sentences = ["A man is eating food.", "A man is riding a white horse on an enclosed ground.", "Hi"]
    got = zoo.pipeline("feature-extraction", model=str(minilm))(sentences, batch_size=3)
    for g, e in zip(got, reference(minilm, sentences, batch_size=3)):
        torch.testing.assert_close(g, e[: g.shape[0]], atol=1e-5, rtol=1e-5)


def test_long_text_is_truncated_with_a_warning(encoder, caplog):
    extract = zoo.pipeline("feature-extraction", model=str(encoder))
    with caplog.at_level(logging.WARNING):
        out = extract("hello world " * 100)
    assert out.shape[0] == 64 and "truncated" in caplog.text
    with pytest.raises(PipelineError, match="truncation=False"):
        extract("hello world " * 100, truncation=False)


@pytest.mark.parametrize("options, message", [
    ({"normalize": True}, "pass pooling="), ({"pooling": "sum"}, "pooling must be one of"),
    ({"return_tensors": "list"}, "return_tensors must be"),
])
def test_bad_options(encoder, options, message):
    with pytest.raises(PipelineError, match=message):
        zoo.pipeline("feature-extraction", model=str(encoder))(TEXTS, **options)
