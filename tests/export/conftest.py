"""Shared pieces of the export tests: checkpoints written by transformers, exported once per module, and inputs.

An export is slow next to a forward pass (torch.export plus the ONNX translation: seconds), so every module
exports each checkpoint once in a module-scoped fixture and runs many batch sizes and lengths through it. Those
fixtures run before the per-test registry of tests/conftest.py exists, so each sets its own (:func:`registry`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

#: (batch, length) pairs every text export runs: length 1 and batch 1 included (the graphs are traced at 2).
TEXT_SIZES = [(1, 1), (2, 9), (3, 17), (1, 24)]
IMAGE_BATCHES = [1, 2, 5]
ATOL = 1e-4

DISTILBERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", "hello", "world"]


@contextlib.contextmanager
def registry(entry_points: bool = False) -> Iterator[Any]:
    """A fresh registry (built-ins, plus the installed plugins when ``entry_points``) while the block runs."""
    from zoo.registry import Registry, set_registry

    fresh = Registry(entry_points=entry_points)
    previous = set_registry(fresh)
    try:
        yield fresh.load()
    finally:
        set_registry(previous)


def text_inputs(vocab_size: int, batch: int, length: int, seed: int = 0, token_types: bool = False,
                pad_id: int = 0, low: int = 5) -> dict[str, np.ndarray]:
    """Random ids with right padding on every other row after the first (rows keep at least one real token)."""
    generator = np.random.default_rng(seed)
    ids = generator.integers(low, vocab_size, size=(batch, length), dtype=np.int64)
    mask = np.ones((batch, length), dtype=np.int64)
    for row in range(1, batch, 2):
        mask[row, max(1, length // 2):] = 0
    ids[mask == 0] = pad_id
    out = {"input_ids": ids, "attention_mask": mask}
    if token_types:
        types = np.zeros_like(ids)
        types[:, length // 2:] = 1  # a second segment, so token_type_ids matter
        out["token_type_ids"] = types * mask
    return out


def zoo_outputs(model: Any, inputs: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """The named output fields of a zoo model's forward pass on numpy inputs."""
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, return_dict=True)
    return [getattr(out, name).float().numpy() for name in names]


def assert_all_close(got: list[Any], expected: list[Any], names: list[str], atol: float = ATOL) -> None:
    assert len(got) == len(expected) == len(names)
    for name, a, b in zip(names, got, expected):
        a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
        assert a.shape == b.shape, f"{name}: shape {a.shape} != {b.shape}"
        np.testing.assert_allclose(a, b, atol=atol, rtol=0, err_msg=name)


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "zoo_export.json").read_text(encoding="utf-8"))


def make_distilbert(folder: Path, task: str = "sequence-classification", seed: int = 0) -> None:
    """A small random transformers DistilBERT with vocab.txt, for the external plugin (zoo-distilbert)."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.DistilBertConfig(vocab_size=len(DISTILBERT_VOCAB), dim=32, n_layers=2, n_heads=4,
                                           hidden_dim=48, max_position_embeddings=40,
                                           num_labels=2 if task == "question-answering" else 3)
    cls = {"sequence-classification": transformers.DistilBertForSequenceClassification,
           "question-answering": transformers.DistilBertForQuestionAnswering}[task]
    cls(config).eval().save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(DISTILBERT_VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "DistilBertTokenizer",
                                                              "do_lower_case": True, "model_max_length": 40}))


def write_sentence_transformers_files(folder: Path, mode: str = "cls", normalize: bool = True) -> None:
    """modules.json + 1_Pooling/config.json (+ a Normalize module) in sentence-transformers' layout."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean", "pooling_mode_max_tokens": mode == "max"}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))


@pytest.fixture(scope="session")
def onnxruntime():
    return pytest.importorskip("onnxruntime")


def session(path: Path) -> Any:
    from zoo.export import onnx_session

    return onnx_session(path, threads=1)
