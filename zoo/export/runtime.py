"""Running an exported causal LM's KV-cache graph in ONNX Runtime: the generation loop a device app writes.

:func:`greedy_generate` is that loop in a few lines of numpy, driven only by the files of the export (model.onnx
and zoo_export.json), so it doubles as the reference for an app in another language: feed the prompt with empty
pasts, then one token a step with the previous presents, the attention mask grown by one and the position advanced
by one; rows that produced an end-of-sequence id continue with the pad id, as ``model.generate`` does. The tests
hold its ids equal to ``model.generate(do_sample=False)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def onnx_session(model_file: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU for ``model_file`` (``threads``: intra-op threads)."""
    from zoo.export.onnx import require_onnx

    require_onnx(runtime=True)
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_file), sess_options=options, providers=["CPUExecutionProvider"])


def greedy_generate(model_file: str | os.PathLike[str], input_ids: Any, attention_mask: Any = None, *,
                    max_new_tokens: int = 20, session: Any = None) -> Any:
    """Greedy decoding through an exported KV-cache graph: ``(batch, prompt + new)`` int64 ids (numpy).

    ``input_ids`` / ``attention_mask`` are (batch, prompt) arrays or tensors, left-padded for batches of different
    lengths; decoding stops after ``max_new_tokens`` or when every row has produced an eos id.
    """
    import numpy as np

    from zoo.errors import ExportError
    from zoo.export.metadata import load_metadata

    meta = load_metadata(Path(model_file))
    generation = meta.get("generation")
    if meta.get("format") != "onnx" or not generation:
        raise ExportError(f"{model_file} is not an ONNX causal-LM graph with a key/value cache (its zoo_export.json "
                          f"says format {meta.get('format')!r}, task {meta.get('task')!r}); export the model with "
                          f"task='causal-lm'")
    cache = generation["cache"]
    eos = generation.get("eos_token_id")
    eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    pad = generation.get("pad_token_id")
    pad = pad if pad is not None else (min(eos_ids) if eos_ids else 0)
    session = session or onnx_session(model_file)

    ids = np.asarray(input_ids, dtype=np.int64)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask, dtype=np.int64)
    batch = ids.shape[0]
    dtype = {"float32": np.float32, "float16": np.float16}.get(meta.get("dtype", "float32"), np.float32)
    past_names = [f"past_key_values.{i}.{kv}" for i in range(cache["num_layers"]) for kv in ("key", "value")]
    empty = np.zeros((batch, cache["num_heads"], 0, cache["head_dim"]), dtype=dtype)
    positions = np.where(mask == 0, 0, np.cumsum(mask, axis=-1) - 1)
    feed = {"input_ids": ids, "attention_mask": mask, "position_ids": positions, **{n: empty for n in past_names}}
    sequences, finished = ids, np.zeros(batch, dtype=bool)
    for _ in range(max_new_tokens):
        logits, *present = session.run(None, feed)
        token = logits[:, -1].argmax(-1).astype(np.int64)  # (B,)
        token = np.where(finished, pad, token)
        sequences = np.concatenate([sequences, token[:, None]], axis=1)
        finished |= np.isin(token, list(eos_ids))
        if finished.all():
            break
        mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
        feed = {"input_ids": token[:, None], "attention_mask": mask, "position_ids": feed["position_ids"][:, -1:] + 1,
                **dict(zip(past_names, present))}
    return sequences
