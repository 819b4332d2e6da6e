"""What a device app reads beside an exported program: ``zoo_export.json`` and the preprocessing files.

The JSON says, for the program next to it, everything an app needs that the program itself does not: the format
(and opset, or ExecuTorch backend), the task, every input and output (name, dtype, shape with symbolic axes such as
``batch`` / ``sequence`` and their ranges), and the post-processing: the labels of a classifier and the activation
that turns logits into scores, the pooling and normalization of a sentence-embedding model (from
sentence-transformers' ``modules.json`` + ``1_Pooling/config.json`` when the repo has them), the span decoding of
question answering, and for a causal LM the cache layout (layers, heads, head_dim), the position rule and the
eos/pad/bos ids of a generation loop. Beside it go config.json and the tokenizer files (``save_pretrained``) or
``preprocessor_config.json``, so the folder is also loadable by zoo and transformers for reference outputs.
Keys follow optimum's ONNX export where it has names for them (``past_key_values.{i}.key``, ``present.{i}.key``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError, ExportError, ModelFileNotFoundError
from zoo.export.source import ExportSource

METADATA_NAME = "zoo_export.json"
#: Version of the layout of zoo_export.json; a reader refuses a newer major version.
SCHEMA_VERSION = 1
#: sentence-transformers' files, copied beside a feature-extraction export when the repo has them.
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def tensor_info(name: str, dtype: str, shape: list[int | str]) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": shape}


def write_side_files(folder: Path, source: ExportSource) -> list[str]:
    """config.json, tokenizer or image-processor files (and generation / sentence-transformers files) -> names."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [source.model.config.save_pretrained(folder).name]
    if source.tokenizer is not None:
        written += [Path(p).name for p in source.tokenizer.save_pretrained(folder)]
    if source.image_processor is not None:
        written.append(Path(source.image_processor.save_pretrained(folder)).name)
    if source.task == "causal-lm" and hasattr(source.model, "generation_config"):
        written.append(source.model.generation_config.save_pretrained(folder).name)
    if source.task == "base" and not source.is_image_model and source.repo is not None:
        written += _copy_pooling_files(source.repo, folder)
    return sorted(set(written))


def _copy_pooling_files(repo: Any, folder: Path) -> list[str]:
    names = [name for name in SENTENCE_TRANSFORMERS_FILES if repo.exists(name)]
    if repo.exists("modules.json"):
        modules = json.loads(repo.require("modules.json").read_text(encoding="utf-8"))
        for module in modules if isinstance(modules, list) else []:
            path = f"{str(module.get('path', '')).strip('/')}/config.json".lstrip("/")
            if str(module.get("type", "")).endswith(("Pooling", "Normalize")) and path != "config.json" \
                    and repo.exists(path):
                names.append(path)
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo.require(name), target)
    return names


def postprocessing(source: ExportSource) -> dict[str, Any]:
    """How the outputs become an answer, per task."""
    config, task = source.model.config, source.task
    if task in ("sequence-classification", "token-classification", "image-classification"):
        labels = _labels(config)
        problem = getattr(config, "problem_type", None)
        if problem == "multi_label_classification":
            activation = "sigmoid"
        elif problem == "regression" or (problem is None and len(labels) == 1 and task == "sequence-classification"):
            activation = "none"
        else:
            activation = "softmax"
        where = "per token" if task == "token-classification" else "per input"
        return {"labels": labels, "activation": activation, "applies": where, "problem_type": problem}
    if task == "question-answering":
        return {"span": "answer = tokens argmax(start_logits) .. argmax(end_logits) (end >= start), over the "
                        "context's tokens"}
    if task == "base" and not source.is_image_model:
        mode, normalize, origin = _pooling(source)
        return {"pooling": {"mode": mode, "normalize": normalize, "from": origin,
                            "rule": _POOLING_RULES[mode] + (", then L2-normalised" if normalize else "")}}
    if task == "masked-lm":
        tok = source.tokenizer
        return {"mask_token_id": getattr(tok, "mask_token_id", None) if tok is not None else None}
    return {}


_POOLING_RULES = {
    "mean": "mean of last_hidden_state over the tokens where attention_mask is 1",
    "cls": "last_hidden_state of the first token",
    "max": "maximum of last_hidden_state over the tokens where attention_mask is 1",
}


def _labels(config: Any) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    if not id2label:  # a config without labels names them as transformers does
        return [f"LABEL_{i}" for i in range(int(getattr(config, "num_labels", 0) or 0))]
    return [str(id2label[i]) for i in sorted(id2label, key=int)]


def _pooling(source: ExportSource) -> tuple[str, bool, str]:
    from zoo.embedding import _pooling_from_repo

    if source.repo is not None and source.repo.exists("modules.json"):
        mode, normalize = _pooling_from_repo(source.repo)
        return mode, normalize, "modules.json"
    return "mean", False, "default (no sentence-transformers files)"


def generation_info(source: ExportSource, layout: Any) -> dict[str, Any]:
    """Cache layout and special ids for a generation loop over the KV-cache graph."""
    from zoo.export.graph import max_positions

    gen = getattr(source.model, "generation_config", None)
    config = source.model.config

    def special(name: str) -> Any:
        value = getattr(gen, name, None) if gen is not None else None
        return value if value is not None else getattr(config, name, None)

    return {
        "cache": {"num_layers": layout.num_layers, "num_heads": layout.num_heads, "head_dim": layout.head_dim,
                  "shape": ["batch", layout.num_heads, "past_sequence", layout.head_dim],
                  "inputs": "past_key_values.{i}.key / past_key_values.{i}.value",
                  "outputs": "present.{i}.key / present.{i}.value",
                  "first_step": "pasts of length 0 (past_sequence = 0)"},
        "position_ids": "prompt: cumsum(attention_mask) - 1, 0 at padding; each step: last position + 1",
        "attention_mask": "(batch, past_sequence + sequence): 1 for real tokens, 0 for padding, over past and new",
        "max_positions": max_positions(config),
        "eos_token_id": special("eos_token_id"),
        "pad_token_id": special("pad_token_id"),
        "bos_token_id": special("bos_token_id"),
    }


def preprocessing(source: ExportSource, files: list[str]) -> dict[str, Any]:
    if source.image_processor is not None:
        p = source.image_processor
        return {"image_processor": "preprocessor_config.json", "size": getattr(p, "size", None),
                "crop_size": getattr(p, "crop_size", None), "image_mean": getattr(p, "image_mean", None),
                "image_std": getattr(p, "image_std", None), "rescale_factor": getattr(p, "rescale_factor", None)}
    if source.tokenizer is not None:
        tok = source.tokenizer
        return {"tokenizer": [f for f in files if f.startswith(("tokenizer", "special_tokens", "vocab", "merges"))],
                "model_max_length": getattr(tok, "model_max_length", None),
                "padding_side": getattr(tok, "padding_side", None)}
    return {}


def build_metadata(*, fmt: str, file: Path, source: ExportSource, plan: Any, inputs: list[dict[str, Any]],
                   outputs: list[dict[str, Any]], files: list[str], **fields: Any) -> dict[str, Any]:
    import torch

    import zoo

    dtype = str(next(source.model.parameters()).dtype).removeprefix("torch.")
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "format": fmt,
        "file": file.name,
        **fields,
        "task": source.task,
        "model_type": source.model_type,
        "architecture": type(source.model).__name__,
        "dtype": dtype,
        "inputs": inputs,
        "outputs": outputs,
        "dynamic_axes": {name: {"min": low, "max": high} for name, (low, high) in sorted(plan.ranges.items())},
        "postprocessing": postprocessing(source),
        "preprocessing": preprocessing(source, files),
        "files": files,
        "producer": {"zoo": zoo.__version__, "torch": torch.__version__.split("+")[0]},
    }
    if plan.cache is not None:
        data["generation"] = generation_info(source, plan.cache)
    return data


def write_metadata(folder: Path, data: dict[str, Any]) -> Path:
    from zoo.configuration import write_text_atomic

    return write_text_atomic(folder / METADATA_NAME, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def load_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The zoo_export.json of an export: ``path`` is the export folder, the program file, or the JSON itself."""
    path = Path(path)
    target = path if path.name == METADATA_NAME else (path / METADATA_NAME if path.is_dir() else path.parent / METADATA_NAME)
    if not target.is_file():
        raise ModelFileNotFoundError(f"{target} does not exist; export a model first (zoo export onnx MODEL OUT), "
                                     f"which writes {METADATA_NAME} beside the program")
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{target} is not a JSON file ({exc}); export the model again") from exc
    if not isinstance(data, dict) or "format" not in data:
        raise ConfigError(f"{target} is not an export description (no 'format'); export the model again")
    if int(data.get("schema_version", 1)) > SCHEMA_VERSION:
        raise ExportError(f"{target} has schema_version {data['schema_version']}, newer than this zoo reads "
                          f"({SCHEMA_VERSION}); upgrade zoo-hub")
    return data
