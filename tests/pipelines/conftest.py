"""Checkpoints shared by the pipeline tests: small random transformers models written once per session.

Weights are drawn at a larger scale than transformers' init (``initializer_range``) so predictions differ from
token to token and label to label; with the default scale every label scores about the same and a wrong label
choice could pass unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.checkpoints import make_bert

#: Wider weights than transformers' 0.02 default, so argmaxes are decided by clear margins.
SCALE = 0.4

LABEL_SCHEMES = {
    "bio": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
    "plain": ["O", "PER", "LOC"],
    "mixed": ["O", "B-MISC", "I-MISC", "PER", "B-LOC"],
}


def make_checkpoint(folder: Path, task: str, seed: int = 0, **config):
    """A transformers BERT for ``task`` under ``folder`` with scaled random weights; returns the HF model."""
    return make_bert(folder, task=task, seed=seed, initializer_range=SCALE, **config)


def labels_config(labels: list[str]) -> dict:
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": {l: i for i, l in enumerate(labels)}}


@pytest.fixture(scope="session")
def token_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One token-classification checkpoint per label scheme."""
    root = tmp_path_factory.mktemp("token-classification")
    out = {}
    for i, (name, labels) in enumerate(LABEL_SCHEMES.items()):
        make_checkpoint(root / name, "token-classification", seed=i, **labels_config(labels))
        out[name] = root / name
    return out


def read_config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


# --- RoBERTa checkpoints (byte-level BPE, "<mask>") ---------------------------------------------------------------------

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
BPE_CORPUS = [
    "Hello world! The quick brown fox jumps over the lazy dog in Berlin.",
    "My name is Wolfgang and I live in Berlin, where the café is naïve.",
    "Paris is the capital of France. Numbers 12345 and 3.14159 are here!",
    "I love Python and I hate bugs; lovely pythons, hateful bugs.",
]


def _bpe_tokenizer_json() -> str:
    """A small byte-level BPE in roberta-base's tokenizer.json layout (RobertaProcessing, ``<mask>`` with lstrip)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    trainer_backend = Tokenizer(models.BPE())
    trainer_backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    trainer_backend.train_from_iterator(BPE_CORPUS * 4, trainer)
    data = json.loads(trainer_backend.to_str())["model"]
    vocab = dict(data["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["merges"]]
    backend = Tokenizer(models.BPE(vocab, merges, fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    backend.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    return backend.to_str()


_BPE_JSON: list[str] = []


def make_roberta(folder: Path, task: str = "base", seed: int = 0, max_length: int = 64, **overrides):
    """A transformers RoBERTa for ``task`` with scaled random weights and a byte-level BPE tokenizer.json."""
    import torch
    import transformers

    if not _BPE_JSON:
        _BPE_JSON.append(_bpe_tokenizer_json())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(_BPE_JSON[0], encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "RobertaTokenizer", "model_max_length": max_length, "bos_token": "<s>", "eos_token": "</s>",
        "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}))
    vocab_size = json.loads(_BPE_JSON[0])["model"]["vocab"].__len__() + 1
    classes = {"base": "RobertaModel", "masked-lm": "RobertaForMaskedLM", "token-classification": "RobertaForTokenClassification",
               "question-answering": "RobertaForQuestionAnswering", "sequence-classification": "RobertaForSequenceClassification"}
    torch.manual_seed(seed)
    config = transformers.RobertaConfig(**{
        "vocab_size": vocab_size, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 37, "max_position_embeddings": max_length + 2, "type_vocab_size": 1, "pad_token_id": 1,
        "bos_token_id": 0, "eos_token_id": 2, "initializer_range": SCALE, **overrides})
    model = getattr(transformers, classes[task])(config).eval()
    model.save_pretrained(folder)
    return model


_HF_PIPELINES: dict = {}


def hf_pipeline(task: str, folder: Path, **kwargs):
    """transformers' pipeline on a folder, built once per session (the parity oracle)."""
    import transformers

    key = (task, str(folder), tuple(sorted(kwargs.items())))
    if key not in _HF_PIPELINES:
        _HF_PIPELINES[key] = transformers.pipeline(task, model=str(folder), **kwargs)
    return _HF_PIPELINES[key]


def assert_records_equal(got, expected, atol: float = 1e-4) -> None:
    """Lists (of lists) of result dicts are equal: same keys and values, floats within ``atol``."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (got, expected)
        for key, value in expected.items():
            assert_records_equal(got[key], value, atol)
        return
    if isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected), (got, expected)
        for g, e in zip(got, expected):
            assert_records_equal(g, e, atol)
        return
    if isinstance(expected, (float, np.floating)):
        assert abs(float(got) - float(expected)) <= atol, (got, expected)
        return
    if isinstance(expected, np.integer):
        expected = int(expected)
    assert got == expected, (got, expected)


# --- GPT-2 checkpoints (byte-level BPE, no padding token) ------------------------------------------------------------------

EOS = "<|endoftext|>"


def _gpt2_tokenizer_json() -> str:
    """A small byte-level BPE in gpt2's tokenizer.json layout (ByteLevel pre-tokenizer and decoder, one special)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(BPE_CORPUS * 4, trainer)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.add_special_tokens([AddedToken(EOS, special=True, normalized=False)])
    return backend.to_str()


def make_gpt2(folder: Path, seed: int = 0, positions: int = 64, **overrides):
    """A transformers GPT2LMHeadModel with scaled random weights and a byte-level BPE tokenizer.json."""
    import torch
    import transformers

    text = _gpt2_tokenizer_json()
    vocab = json.loads(text)["model"]["vocab"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(text, encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "model_max_length": positions, "bos_token": EOS, "eos_token": EOS,
        "unk_token": EOS}))
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=len(vocab), n_positions=positions, n_embd=32, n_layer=2, n_head=4,
                                     bos_token_id=vocab[EOS], eos_token_id=vocab[EOS], initializer_range=SCALE, **overrides)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    return model
