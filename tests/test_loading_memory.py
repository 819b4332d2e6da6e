"""Loading a checkpoint of real size keeps memory near the size of its weights.

A sharded bf16 checkpoint of about 340 MB (``model.safetensors.index.json`` and its shards, config.json recording
``"dtype": "bfloat16"`` as published checkpoints do) is written once per architecture, with the key names and
shapes of that architecture's zoo model, then loaded in a fresh Python process that reports how far its peak
resident set grew: ``VmHWM`` after the load, minus ``VmRSS`` just before it, in a process that has imported torch,
zoo and the model code and built nothing (the peak is reset first through ``/proc/self/clear_refs``, so an earlier
peak cannot hide the load's). After loading, every parameter is read once, so the weights are resident when the
peak is read: a loader that mapped the file and never touched it would otherwise look free.

- The default (``dtype="auto"``) loads bf16 as bf16: the peak grows by about the weights' size (at most 1.2x),
  which leaves no room for a float32 copy or a second allocation.
- ``dtype=torch.float32`` from the bf16 file: the result is 2x the file; the peak stays within 2.2x, so the bf16
  file's pages are not held beside the converted model (reading views of the mapped file and converting them holds
  both: about 3x).
- ``device="cuda"`` (only where CUDA is): the CPU's peak stays well under the weights' size, so no CPU model is built
  first.

``BUILDERS`` is the table of architectures; an entry names the zoo class whose keys and shapes the file gets and
the config fields that make it about 340 MB.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from zoo.modeling import empty_weights

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak RSS from /proc (Linux)")


@dataclass(frozen=True)
class Builder:
    """An architecture to write a large checkpoint of: its zoo class (``module:Class``) and config fields."""

    model: str
    config: dict[str, Any] = field(default_factory=dict)


BUILDERS: dict[str, Builder] = {
    # 50257 x 1024 embeddings (tied lm_head, stored once) and 10 blocks: 178 M parameters, 340 MiB in bf16
    "gpt2": Builder("zoo.plugins.gpt2.modeling:GPT2LMHeadModel", dict(n_embd=1024, n_layer=10, n_head=16)),
    # Qwen2.5-0.5B's widths (GQA 14/2, q/k/v biases, tied 151936 x 896 embeddings) over 8 of its 24 layers:
    # 175 M parameters, 335 MiB in bf16
    "qwen2": Builder("zoo.plugins.llama.modeling:Qwen2ForCausalLM",
                     dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=8,
                          num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)),
}
SHARD_BYTES = 100 * 2**20


def model_class(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def write_checkpoint(folder: Path, builder: Builder, seed: int = 0) -> int:
    """Write a sharded bf16 checkpoint of ``builder``'s architecture; return its tensors' bytes (the index's
    ``total_size``). Keys and shapes are those of the zoo model built on meta (tied copies left out, as
    save_pretrained leaves them out); values are seeded normal draws, one tensor in memory at a time beside its
    shard (~100 MB)."""
    cls = model_class(builder.model)
    config = cls.config_class(**builder.config)
    with empty_weights():
        model = cls(config)
    tied = model._tied_pairs()
    generator = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = total = 0
    for key, meta in model.state_dict().items():
        if key in tied:
            continue
        if meta.is_floating_point():
            tensor = torch.empty(meta.shape, dtype=torch.bfloat16).normal_(0, 0.02, generator=generator)
        else:
            tensor = torch.zeros(meta.shape, dtype=meta.dtype)
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
        total += nbytes
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    for name, shard in zip(names, shards):
        save_file(shard, str(folder / name), metadata={"format": "pt"})
    index = {"metadata": {"total_size": total}, "weight_map": {k: n for n, s in zip(names, shards) for k in s}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config.set_extra("dtype", "bfloat16")
    config.architectures = [cls.__name__]
    config.save_pretrained(folder)
    return total


#: Runs in a fresh interpreter: argv = model class, folder, from_pretrained kwargs as JSON. Prints one JSON line.
CHILD = r"""
import gc, json, sys
import torch
import zoo, zoo.hub, zoo.generation  # everything a load imports, before the baseline
module, _, name = sys.argv[1].partition(":")
cls = getattr(__import__(module, fromlist=[name]), name)
kwargs = json.loads(sys.argv[3])
if "dtype" in kwargs:
    kwargs["dtype"] = getattr(torch, kwargs["dtype"])
if str(kwargs.get("device", "cpu")).startswith("cuda"):  # the CUDA context and copy kernels, before the baseline
    torch.ones(4, dtype=torch.bfloat16).to("cuda").float().copy_(torch.ones(4, dtype=torch.bfloat16))
    torch.cuda.synchronize()

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

gc.collect()
try:  # "5": reset the peak resident set (VmHWM) to the current one (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:  # then the growth below is an upper bound (an earlier peak counts against the load)
    reset = False
before = status("VmRSS")
model = cls.from_pretrained(sys.argv[2], **kwargs)
with torch.no_grad():
    for p in model.parameters():  # read every weight once: resident now, wherever it lives
        p.sum()
if torch.cuda.is_available():
    torch.cuda.synchronize()
peak = status("VmHWM")
params = {id(p): p for p in model.parameters()}.values()
print(json.dumps({"growth": peak - before, "reset": reset,
                  "model_bytes": sum(p.numel() * p.element_size() for p in params),
                  "dtypes": sorted({str(p.dtype) for p in params}), "devices": sorted({p.device.type for p in params})}))
"""


def load_in_fresh_process(builder: Builder, folder: Path, **kwargs: Any) -> dict[str, Any]:
    env = {**os.environ, "ZOO_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, builder.model, str(folder), json.dumps(kwargs)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request, tmp_path_factory) -> tuple[Builder, Path, int]:
    builder = BUILDERS[request.param]
    folder = tmp_path_factory.mktemp(f"large-{request.param}")
    return builder, folder, write_checkpoint(folder, builder)


def _report(measured: dict[str, Any], weights: int) -> str:
    return (f"peak RSS grew by {measured['growth'] / 2**20:.0f} MiB = {measured['growth'] / weights:.2f}x the "
            f"{weights / 2**20:.0f} MiB of bf16 weights (model: {measured['model_bytes'] / 2**20:.0f} MiB "
            f"{measured['dtypes']} on {measured['devices']}; peak reset before loading: {measured['reset']})")


def test_the_default_loads_bf16_as_bf16_at_the_weights_size(checkpoint):
    builder, folder, weights = checkpoint
    measured = load_in_fresh_process(builder, folder)
    report = _report(measured, weights)
    assert measured["dtypes"] == ["torch.bfloat16"] and measured["devices"] == ["cpu"], report
    assert measured["model_bytes"] == weights, report  # every tensor once: the tied lm_head is the embeddings
    # the weights are resident (the measurement sees them), and nothing beside them: no float32 copy, no second model
    assert 0.9 * weights <= measured["growth"] <= 1.2 * weights, report


def test_float32_from_a_bf16_file_holds_the_result_and_not_the_file_beside_it(checkpoint):
    builder, folder, weights = checkpoint
    measured = load_in_fresh_process(builder, folder, dtype="float32")
    report = _report(measured, weights)
    assert measured["dtypes"] == ["torch.float32"] and measured["model_bytes"] == 2 * weights, report
    assert 1.9 * weights <= measured["growth"] <= 2.2 * weights, report


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [None, "float32"])
def test_device_cuda_puts_each_tensor_there_as_it_is_read(checkpoint, dtype):
    builder, folder, weights = checkpoint
    measured = load_in_fresh_process(builder, folder, device="cuda", **({"dtype": dtype} if dtype else {}))
    report = _report(measured, weights)
    assert measured["devices"] == ["cuda"] and measured["dtypes"] == [f"torch.{dtype or 'bfloat16'}"], report
    # a CPU model first would be 1x (bf16) or 2x (float32) the weights in the CPU's peak
    assert measured["growth"] <= 0.5 * weights, report
