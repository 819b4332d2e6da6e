"""Shared fixtures of the TensorFlow-import tests: real checkpoints written by TensorFlow itself, and a test process
in which TensorFlow cannot be imported.

TensorFlow is a test oracle only, and a heavy one (seconds to import, hundreds of MB): it runs in a subprocess
(:func:`run_tensorflow`), which writes checkpoints and what ``tf.train.load_checkpoint`` reads back from them
(``.npy`` files and a manifest, see :func:`load_oracle`). The pytest process itself never imports it: every test
in this folder runs with the import blocked (:func:`block_tensorflow`, autouse), so whatever zoo reads here it
reads without TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

BLOCKED = ("tensorflow", "tf_keras", "keras", "tensorboard")


class _BlockTensorFlow(importlib.abc.MetaPathFinder):
    """Refuses to find TensorFlow and Keras, as if they were not installed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError(f"{fullname} is blocked in zoo's TensorFlow-import tests: zoo must not need it")
        return None


@pytest.fixture(autouse=True)
def block_tensorflow(monkeypatch):
    """``import tensorflow`` fails for the whole test (and any module it loaded earlier is forgotten)."""
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            monkeypatch.delitem(sys.modules, name)
    finder = _BlockTensorFlow()
    sys.meta_path.insert(0, finder)
    yield
    sys.meta_path.remove(finder)


def tensorflow_installed() -> bool:
    """Whether a subprocess can use TensorFlow: found on sys.path, without importing it (and past the block)."""
    return importlib.machinery.PathFinder.find_spec("tensorflow") is not None


_PRELUDE = """
import os, sys, json
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np
import tensorflow as tf


def save_oracle(prefix, dest):
    '''What TensorFlow itself reads from the checkpoint at prefix: a manifest (name -> dtype, shape) and every
    variable's value in values.npz, under the name's position in the manifest.'''
    os.makedirs(dest, exist_ok=True)
    reader = tf.train.load_checkpoint(prefix)
    dtypes, shapes = reader.get_variable_to_dtype_map(), reader.get_variable_to_shape_map()
    manifest, arrays = {}, {}
    for i, name in enumerate(sorted(shapes)):
        dtype = dtypes[name].name
        manifest[name] = {"dtype": dtype, "shape": list(shapes[name]), "key": f"v{i}"}
        if dtype not in ("string", "resource", "variant"):
            value = np.asarray(reader.get_tensor(name))
            if dtype == "bfloat16":  # ml_dtypes' bfloat16 does not round-trip through .npy: keep the bits
                value = value.view(np.uint16)
            arrays[f"v{i}"] = value
    np.savez(os.path.join(dest, "values.npz"), **arrays)
    with open(os.path.join(dest, "manifest.json"), "w") as f:
        json.dump(manifest, f)
"""


def run_tensorflow(code: str, *args: str | os.PathLike, timeout: float = 600) -> str:
    """Run ``code`` (Python using TensorFlow; ``tf``, ``np`` and ``save_oracle(prefix, dest)`` are defined, the
    arguments are in ``sys.argv[1:]``) in a subprocess; its stdout. Skips the test where TensorFlow is not
    installed, fails it (with TensorFlow's stderr) where the code fails."""
    if not tensorflow_installed():
        pytest.skip("TensorFlow is not installed: it writes the checkpoints these tests read "
                    "(pip install 'zoo-hub[test]')")
    script = _PRELUDE + "\n" + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "PYTHONHASHSEED": "0"})
    if result.returncode != 0:
        pytest.fail(f"the TensorFlow subprocess failed:\n{result.stderr[-6000:]}")
    return result.stdout


def load_oracle(dest: Path) -> dict[str, dict]:
    """The manifest :func:`save_oracle` wrote, each entry with its ``value`` (numpy; bfloat16 as its uint16
    bits) where it has one."""
    manifest = json.loads((dest / "manifest.json").read_text())
    with np.load(dest / "values.npz") as arrays:
        for entry in manifest.values():
            if entry["key"] in arrays:
                entry["value"] = arrays[entry["key"]]
    return manifest


# One subprocess writes every checkpoint the reader tests use (TensorFlow's import dominates its time).
_WRITE_CHECKPOINTS = r"""
out = sys.argv[1]
rng = np.random.default_rng(0)


def values(dtype, shape):
    if dtype in ("float16", "float32", "float64", "bfloat16"):
        return tf.constant(rng.standard_normal(shape).astype(np.float32), dtype=dtype)
    if dtype == "complex64":
        return tf.constant((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64))
    if dtype == "bool":
        return tf.constant(rng.random(shape) < 0.5)
    if dtype == "string":
        return tf.constant(np.array([("x" * int(n)).encode() for n in rng.integers(0, 300, size=shape).ravel()],
                                    dtype=object).reshape(shape))
    info = np.iinfo(dtype)
    return tf.constant(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))


# 1. TF1 Saver, sharded: variables on two CPU devices -> one data shard per device.
DTYPES = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "int8", "uint8", "int16", "uint16",
          "bool", "complex64"]
SHAPES = [(3, 5), (), (0,), (2, 0, 3), (7,), (300, 257)]
folder = os.path.join(out, "saver")
os.makedirs(folder)
with tf.Graph().as_default():
    for i, dtype in enumerate(DTYPES):
        for j, shape in enumerate(SHAPES):
            with tf.device(f"/cpu:{(i + j) % 2}"):
                tf.compat.v1.Variable(values(dtype, shape), name=f"{dtype}/shape_{j}")
    with tf.device("/cpu:1"):
        tf.compat.v1.Variable(values("string", (4,)), name="notes/strings")
        tf.compat.v1.Variable(values("string", ()), name="notes/scalar_string")
    saver = tf.compat.v1.train.Saver(sharded=True)
    with tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(device_count={"CPU": 2})) as session:
        session.run(tf.compat.v1.global_variables_initializer())
        prefix = saver.save(session, os.path.join(folder, "model.ckpt"))
save_oracle(prefix, os.path.join(out, "saver-oracle"))

# 2. Thousands of variables, names sharing long prefixes and long names that do not: an index of several
#    256 KiB blocks with many restart points. Written by SaveV2, the op tf.compat.v1.train.Saver runs.
folder = os.path.join(out, "many")
os.makedirs(folder)
names, tensors = [], []
for i in range(3000):
    if i % 3:
        names.append(f"bert/encoder/layer_{i // 12}/attention/self/" + "query/" * (i % 7) + f"kernel_{i}")
    else:
        names.append(f"v{i:05d}/" + "".join(chr(97 + (i * k) % 26) for k in range(200 + i % 1000)))
    tensors.append(values(DTYPES[i % 8], (i % 5, 3)))
tf.raw_ops.SaveV2(prefix=os.path.join(folder, "model.ckpt"), tensor_names=names,
                  shape_and_slices=[""] * len(names), tensors=tensors)
save_oracle(os.path.join(folder, "model.ckpt"), os.path.join(out, "many-oracle"))

# 3. TF2 object-based checkpoint, split into several shards by size.
module = tf.Module()
module.embeddings = tf.Variable(values("float32", (64, 50)), name="embeddings")
module.layers = [tf.Variable(values("float32", (50, 50)), name=f"dense_{i}") for i in range(6)]
module.steps = tf.Variable(values("int64", ()), name="steps")
options = tf.train.CheckpointOptions(
    experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=12000))
prefix = tf.train.Checkpoint(model=module).write(os.path.join(out, "tf2", "ckpt"), options=options)
save_oracle(prefix, os.path.join(out, "tf2-oracle"))

# 4. Partitioned variables (tf.compat.v1 partitioners) beside a whole one.
folder = os.path.join(out, "partitioned")
os.makedirs(folder)
with tf.Graph().as_default():
    tf.compat.v1.get_variable("sliced", shape=(10, 4), partitioner=tf.compat.v1.fixed_size_partitioner(2))
    tf.compat.v1.get_variable("sliced_3d", shape=(3, 7, 2), dtype=tf.int32,
                              initializer=tf.compat.v1.random_uniform_initializer(-100, 100, dtype=tf.int32),
                              partitioner=tf.compat.v1.fixed_size_partitioner(3, axis=1))
    tf.compat.v1.Variable(values("float32", (2, 2)), name="whole")
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        prefix = saver.save(session, os.path.join(folder, "model.ckpt"))
save_oracle(prefix, os.path.join(out, "partitioned-oracle"))
print("ok")
"""


@pytest.fixture(scope="session")
def tf_checkpoints(tmp_path_factory) -> Path:
    """A folder of checkpoints TensorFlow wrote, each beside what TensorFlow reads from it (``NAME-oracle/``):
    ``saver/`` (tf.compat.v1.train.Saver, sharded over two devices, a dozen dtypes, scalars, empty tensors and
    strings), ``many/`` (3000 variables: an index of several blocks), ``tf2/`` (tf.train.Checkpoint in several
    shards, large variables split into slices across them) and ``partitioned/`` (tf.compat.v1 partitioners)."""
    out = tmp_path_factory.mktemp("tf-checkpoints")
    run_tensorflow(_WRITE_CHECKPOINTS, out)
    return out
