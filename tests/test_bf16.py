"""bf16 as a first-class precision: dtype names, SentenceEmbedder(dtype=...), and every pipeline's float32 results.

The model runs in bf16; what comes back (vectors, scores, probabilities) is computed in float32, so a softmax does
not keep only bf16's 8 bits of mantissa. References are transformers' float32 models on the same small random
checkpoints (tests/checkpoints.py, tests/pipelines/conftest.py); bounds are agreement rates and cosines, never
hand-written numbers.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import zoo
from tests.checkpoints import make_bert
from tests.pipelines.conftest import hf_pipeline, labels_config, make_checkpoint
from zoo.embedding import SentenceEmbedder, pool
from zoo.errors import ConfigError, PipelineError
from zoo.loading import DTYPE_NAMES, resolve_dtype

WORDS = ["i", "love", "hate", "python", "bugs", "hello", "world", "the", "café", "is", "naïve", "a", "of", "and"]
#: 30 texts of 2 to 9 words, a different mix each (deterministic, so failures reproduce).
TEXTS = [" ".join(WORDS[(i * 5 + j * 3) % len(WORDS)] for j in range(2 + i % 8)) for i in range(30)]


def bf16_exact(value: float) -> bool:
    """Whether ``value`` is a bf16 number (what every score would be had it been computed in bf16)."""
    return torch.tensor(value).bfloat16().float().item() == value


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)


# --- dtype names ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("bf16", torch.bfloat16), ("BF16", torch.bfloat16), ("bfloat16", torch.bfloat16), ("torch.bfloat16", torch.bfloat16),
    ("fp16", torch.float16), ("half", torch.float16), ("Float16", torch.float16),
    ("fp32", torch.float32), ("float", torch.float32), ("FLOAT32", torch.float32), (" fp32 ", torch.float32),
    ("float64", torch.float64), ("double", torch.float64),
    (torch.bfloat16, torch.bfloat16), (None, None),
])
def test_dtype_names_resolve(name, expected):
    assert resolve_dtype(name, config=None) == expected


def test_auto_reads_the_config_record_by_the_same_table():
    class Config:
        dtype = "bf16"

    assert resolve_dtype("auto", Config()) == resolve_dtype("AUTO", Config()) == torch.bfloat16
    assert resolve_dtype("auto", object()) is None


def test_every_cli_choice_is_a_dtype_name():
    from zoo.cli import DTYPE_CHOICES

    assert set(DTYPE_CHOICES) - {"auto"} <= set(DTYPE_NAMES)
    assert {"bf16", "fp16", "fp32"} <= set(DTYPE_CHOICES)


@pytest.mark.parametrize("bad", ["bf8", "int8", "float42", "auto16", 16])
def test_a_bad_dtype_names_every_accepted_one(bad):
    with pytest.raises(ConfigError, match=f"dtype '{bad}' is not a torch dtype") as info:
        resolve_dtype(bad, config=None)
    assert all(name in str(info.value) for name in ("'auto'", "bf16", "fp16", "fp32", "bfloat16", "half"))


def test_a_bad_config_record_says_where_it_came_from():
    class Config:
        dtype = "weird"

    with pytest.raises(ConfigError, match="'weird' \\(the dtype config.json records, read for dtype='auto'\\)"):
        resolve_dtype("auto", Config())


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A random BERT encoder (no sentence-transformers files: mean pooling, no normalisation); the HF model too."""
    folder = tmp_path_factory.mktemp("bf16-encoder")
    return folder, make_bert(folder, task="base", seed=7)


def test_from_pretrained_takes_the_short_names(encoder):
    folder, _ = encoder
    for name, expected in (("bf16", torch.bfloat16), ("fp16", torch.float16), ("FP32", torch.float32)):
        model = zoo.AutoModel.from_pretrained(folder, dtype=name)
        assert {p.dtype for p in model.parameters()} == {expected}


# --- SentenceEmbedder --------------------------------------------------------------------------------------------------

def test_sentence_embedder_in_bf16_returns_float32_close_to_fp32(encoder):
    folder, hf = encoder
    fp32 = SentenceEmbedder(folder).encode(TEXTS)
    embedder = SentenceEmbedder(folder, dtype="bf16")
    assert {p.dtype for p in embedder.model.parameters()} == {torch.bfloat16}  # the dtype was not ignored
    bf16 = embedder.encode(TEXTS, batch_size=8)
    assert bf16.dtype == fp32.dtype == torch.float32 and bf16.shape == fp32.shape
    assert not torch.equal(bf16, fp32)  # the forward pass really ran in bf16
    assert cosines(bf16, fp32).min() >= 0.999
    # the float32 reference is transformers' mean pooling on the same files
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = hf(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(fp32, (hidden * mask).sum(1) / mask.sum(1), atol=1e-5, rtol=1e-5)
    single = embedder.encode(TEXTS[0])
    assert single.dtype == torch.float32 and single.shape == (hf.config.hidden_size,)
    assert embedder.encode([]).dtype == torch.float32


@pytest.mark.parametrize("mode", ["mean", "cls", "max"])
def test_pooling_bf16_hidden_states_accumulates_in_float32(mode):
    torch.manual_seed(0)
    hidden = torch.randn(3, 50, 16).bfloat16()
    mask = torch.ones(3, 50, dtype=torch.long)
    mask[1, 20:] = 0
    pooled = pool(hidden, mask, mode)
    assert pooled.dtype == torch.float32
    # bit for bit what pooling the float32 copy gives: the sum was not taken in bf16
    assert torch.equal(pooled, pool(hidden.float(), mask, mode))
    assert pool(hidden.double(), mask, mode).dtype == torch.float64  # wider dtypes are left as they are


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_sentence_embedder_other_poolings_in_bf16(encoder, pooling):
    folder, _ = encoder
    fp32 = SentenceEmbedder(folder, pooling=pooling, normalize=True).encode(TEXTS)
    bf16 = SentenceEmbedder(folder, pooling=pooling, normalize=True, dtype=torch.bfloat16).encode(TEXTS)
    assert bf16.dtype == torch.float32
    torch.testing.assert_close(bf16.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-6, rtol=0)  # normalised in float32
    assert cosines(bf16, fp32).min() >= 0.999


def test_sentence_embedder_bad_dtype_is_a_config_error(encoder):
    with pytest.raises(ConfigError, match="dtype 'bf17' is not a torch dtype"):
        SentenceEmbedder(encoder[0], dtype="bf17")


# --- pipelines: float32 results from a bf16 model ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bf16-classifier")
    make_checkpoint(folder, "sequence-classification", seed=11, **labels_config(["neg", "neutral", "pos", "other"]))
    return folder


def test_text_classification_in_bf16_scores_in_float32_and_agrees_with_fp32(classifier):
    pipe = zoo.pipeline("text-classification", model=str(classifier), dtype="bf16")
    assert pipe.model.dtype == torch.bfloat16
    ours = pipe(TEXTS, top_k=None)
    theirs = hf_pipeline("text-classification", classifier)(TEXTS, top_k=None)  # transformers, float32
    agree = sum(o[0]["label"] == t[0]["label"] for o, t in zip(ours, theirs))
    assert agree >= 0.8 * len(TEXTS), f"bf16 top labels agree with float32 on {agree}/{len(TEXTS)} texts"
    scores = [r["score"] for rows in ours for r in rows]
    for rows in ours:  # a float32 softmax: sums to 1 within float32 rounding (a bf16 one is off by up to ~1e-2)
        assert abs(sum(r["score"] for r in rows) - 1) < 1e-5
    assert sum(bf16_exact(s) for s in scores) < len(scores) / 4  # scores are not bf16 numbers
    for o, t in zip(ours, theirs):  # close to float32 in value too
        expected = {r["label"]: r["score"] for r in t}
        assert max(abs(r["score"] - expected[r["label"]]) for r in o) < 0.1


def test_a_bad_pipeline_dtype_is_a_pipeline_error(classifier):
    with pytest.raises(PipelineError, match="dtype 'fp8' is not a torch dtype.*bf16"):
        zoo.pipeline("text-classification", model=str(classifier), dtype="fp8")


def test_auto_keeps_the_loaded_dtype(classifier):
    assert zoo.pipeline("text-classification", model=str(classifier), dtype="auto").model.dtype == torch.float32


def test_token_classification_in_bf16(tmp_path):
    make_checkpoint(tmp_path, "token-classification", seed=2, **labels_config(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]))
    fp32 = zoo.pipeline("token-classification", model=str(tmp_path), ignore_labels=[])
    bf16 = zoo.pipeline("token-classification", model=str(tmp_path), ignore_labels=[], dtype="bf16")
    assert bf16.model.dtype == torch.bfloat16
    ours, reference = bf16(TEXTS), fp32(TEXTS)
    tokens = list(itertools.chain.from_iterable(zip(o, r) for o, r in zip(ours, reference)))
    assert len(tokens) > 100
    agree = sum(o["entity"] == r["entity"] and o["index"] == r["index"] for o, r in tokens)
    assert agree >= 0.8 * len(tokens)
    assert sum(bf16_exact(o["score"]) for o, _ in tokens) < len(tokens) / 4


def test_fill_mask_in_bf16(tmp_path):
    make_checkpoint(tmp_path, "masked-lm", seed=4)
    texts = [f"{t} [MASK]" for t in TEXTS]
    fp32 = zoo.pipeline("fill-mask", model=str(tmp_path))(texts, top_k=3)
    pipe = zoo.pipeline("fill-mask", model=str(tmp_path), dtype="bf16")
    assert pipe.model.dtype == torch.bfloat16
    ours = pipe(texts, top_k=3)
    agree = sum(o[0]["token"] == r[0]["token"] for o, r in zip(ours, fp32))
    assert agree >= 0.8 * len(texts)
    scores = [row["score"] for rows in ours for row in rows]
    assert sum(bf16_exact(s) for s in scores) < len(scores) / 4


def test_question_answering_in_bf16(tmp_path):
    make_checkpoint(tmp_path, "question-answering", seed=3)
    inputs = [{"question": "who is naïve?", "context": t + " and the café is lovely"} for t in TEXTS]
    fp32 = zoo.pipeline("question-answering", model=str(tmp_path))(inputs)
    pipe = zoo.pipeline("question-answering", model=str(tmp_path), dtype="bf16")
    assert pipe.model.dtype == torch.bfloat16
    ours = pipe(inputs)
    agree = sum((o["start"], o["end"]) == (r["start"], r["end"]) for o, r in zip(ours, fp32))
    assert agree >= 0.7 * len(inputs)
    assert sum(bf16_exact(o["score"]) for o in ours) < len(ours) / 4


def test_feature_extraction_in_bf16(encoder):
    folder, _ = encoder
    fp32 = zoo.pipeline("feature-extraction", model=str(folder))
    bf16 = zoo.pipeline("feature-extraction", model=str(folder), dtype="bf16")
    assert bf16.model.dtype == torch.bfloat16
    for options in ({}, {"pooling": "mean", "normalize": True}):
        ours, reference = bf16(TEXTS, **options), fp32(TEXTS, **options)
        for o, r in zip(ours, reference):
            assert o.dtype == torch.float32 and o.shape == r.shape
            assert cosines(o, r).min() >= 0.999
    # the pooled vectors are what SentenceEmbedder gives in bf16 (the same float32 pooling)
    torch.testing.assert_close(torch.stack(bf16(TEXTS, pooling="mean")),
                               SentenceEmbedder(folder, dtype="bf16").encode(TEXTS), atol=1e-6, rtol=1e-5)


def test_image_classification_in_bf16(tmp_path):
    from tests.image_checkpoints import make_resnet, noise_image, smooth_image

    make_resnet(tmp_path, "bottleneck", seed=5, num_labels=7)
    images = [noise_image(64, 64, seed=i) for i in range(6)] + [smooth_image(64, 64, seed=i) for i in range(6)]
    fp32 = zoo.pipeline("image-classification", model=str(tmp_path))(images, top_k=None)
    pipe = zoo.pipeline("image-classification", model=str(tmp_path), dtype="bf16")
    assert pipe.model.dtype == torch.bfloat16
    ours = pipe(images, top_k=None)
    agree = sum(o[0]["label"] == r[0]["label"] for o, r in zip(ours, fp32))
    assert agree >= 0.75 * len(images)
    for rows in ours:
        assert abs(sum(r["score"] for r in rows) - 1) < 1e-5


# --- loading straight into the dtype, quantization through pipelines and the embedder ----------------------------------

def test_a_pipeline_reads_the_model_straight_into_its_dtype(encoder, monkeypatch):
    """pipeline(model=folder, dtype=...) asks from_pretrained for the dtype (no float32 model first, then a cast)."""
    folder, _ = encoder
    asked = []
    original = zoo.modeling.PreTrainedModel.from_pretrained.__func__

    def recording(cls, *args, **kwargs):
        asked.append((kwargs.get("dtype"), kwargs.get("quantization")))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(zoo.modeling.PreTrainedModel, "from_pretrained", classmethod(recording))
    extractor = zoo.pipeline("feature-extraction", model=folder, dtype="bf16")
    assert asked == [("bf16", None)]
    assert {p.dtype for p in extractor.model.parameters()} == {torch.bfloat16}
    quantized = zoo.pipeline("feature-extraction", model=folder, quantization="int8")
    assert asked[-1] == (None, "int8") and quantized.model.quantization == "int8"
    assert quantized("i love python", pooling="mean").dtype == torch.float32


def test_a_loaded_model_takes_a_dtype_but_not_a_quantization(encoder):
    folder, _ = encoder
    model = zoo.AutoModel.from_pretrained(folder)
    tokenizer = zoo.AutoTokenizer.from_pretrained(folder)
    assert zoo.pipeline("feature-extraction", model=model, tokenizer=tokenizer, dtype="bf16").model.dtype == torch.bfloat16
    with pytest.raises(PipelineError, match="got a loaded model and quantization; these apply when loading"):
        zoo.pipeline("feature-extraction", model=model, tokenizer=tokenizer, quantization="int8")


def test_sentence_embedder_takes_int8(encoder):
    folder, _ = encoder
    fp32 = SentenceEmbedder(folder).encode(TEXTS)
    embedder = SentenceEmbedder(folder, quantization="int8")
    assert embedder.model.quantization == "int8"
    int8 = embedder.encode(TEXTS)
    assert int8.dtype == torch.float32 and not torch.equal(int8, fp32)
    assert cosines(int8, fp32).min() >= 0.99
    with pytest.raises(ConfigError, match="quantization='int4' is not available"):
        SentenceEmbedder(folder, quantization="int4")
