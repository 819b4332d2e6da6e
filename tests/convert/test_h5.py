"""zoo.convert.H5Weights reads Keras .h5 weight files in the layout transformers' TF classes wrote.

transformers 4 saved ``tf_model.h5`` through Keras 2's save_weights (keras/saving/hdf5_format.py), with weight
names such as ``tf_bert_for_pre_training/bert/encoder/layer_._0/attention/self/query/kernel:0``. Neither can be
run here any more: transformers 5 dropped its TF classes, and Keras 3 (the only Keras TensorFlow 2.16+ ships)
names weights by layer path (``dense/kernel``, no ``:0``) and writes its own ``.weights.h5`` format. So that layout
is written below with h5py, exactly as Keras 2 did (attributes, groups, chunked attributes, transformers' sharded
files); and Keras 3's legacy writer, which keeps the same structure with its shorter names, runs in a subprocess
as a second, independent writer.
"""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest
import torch

from tests.convert.conftest import run_tensorflow
from zoo.convert import H5Weights
from zoo.errors import CheckpointFormatError, MissingDependencyError, ModelFileNotFoundError, VariableNotFoundError

HDF5_OBJECT_HEADER_LIMIT = 64512  # keras/saving/hdf5_format.py: larger attributes are split into chunks


def save_attributes_to_hdf5_group(group, name, data):
    """Keras 2's save_attributes_to_hdf5_group: one attribute, or ``name0``, ``name1``... when it would not fit
    in an HDF5 object header."""
    data = [d.encode("utf8") if isinstance(d, str) else d for d in data]
    chunks = 1
    array = np.asarray(data)
    while array.nbytes > HDF5_OBJECT_HEADER_LIMIT:
        chunks += 1
        array = np.array_split(np.asarray(data), chunks)[0]
    if chunks > 1:
        for i, chunk in enumerate(np.array_split(np.asarray(data), chunks)):
            group.attrs[f"{name}{i}"] = chunk
    else:
        group.attrs[name] = np.asarray(data)


def save_weights_like_keras2(path, layers: dict[str, dict[str, np.ndarray]], root: str | None = None):
    """keras/saving/hdf5_format.py save_weights_to_hdf5_group, as TFPreTrainedModel.save_pretrained ran it:
    ``layers`` maps each top-level layer's name to its weights, full TF name -> value."""
    with h5py.File(path, "w") as f:
        g = f.create_group(root) if root else f
        save_attributes_to_hdf5_group(g, "layer_names", list(layers))
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.10.0"
        for layer in sorted(layers):
            group = g.create_group(layer)
            save_attributes_to_hdf5_group(group, "weight_names", list(layers[layer]))
            for name, value in layers[layer].items():
                dataset = group.create_dataset(name, value.shape, dtype=value.dtype)
                if value.shape:
                    dataset[:] = value
                else:
                    dataset[()] = value


def bert_for_pre_training_weights(layers: int = 2, hidden: int = 8, seed: int = 0) -> dict[str, dict]:
    """Random weights under the names transformers 4's TFBertForPreTraining gave them (its top-level layers are
    ``bert``, ``nsp___cls`` and ``mlm___cls``; every name starts with the model's own name)."""
    rng = np.random.default_rng(seed)
    model = "tf_bert_for_pre_training"

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    bert = {f"{model}/bert/embeddings/word_embeddings/weight:0": w(30, hidden),
            f"{model}/bert/embeddings/token_type_embeddings/embeddings:0": w(2, hidden),
            f"{model}/bert/embeddings/position_embeddings/embeddings:0": w(16, hidden),
            f"{model}/bert/embeddings/LayerNorm/gamma:0": w(hidden),
            f"{model}/bert/embeddings/LayerNorm/beta:0": w(hidden)}
    for i in range(layers):
        base = f"{model}/bert/encoder/layer_._{i}"
        for part in ("attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense"):
            bert[f"{base}/{part}/kernel:0"] = w(hidden, hidden)
            bert[f"{base}/{part}/bias:0"] = w(hidden)
        bert[f"{base}/attention/output/LayerNorm/gamma:0"] = w(hidden)
        bert[f"{base}/attention/output/LayerNorm/beta:0"] = w(hidden)
        bert[f"{base}/intermediate/dense/kernel:0"] = w(hidden, 4 * hidden)
        bert[f"{base}/intermediate/dense/bias:0"] = w(4 * hidden)
        bert[f"{base}/output/dense/kernel:0"] = w(4 * hidden, hidden)
        bert[f"{base}/output/dense/bias:0"] = w(hidden)
        bert[f"{base}/output/LayerNorm/gamma:0"] = w(hidden)
        bert[f"{base}/output/LayerNorm/beta:0"] = w(hidden)
    bert[f"{model}/bert/pooler/dense/kernel:0"] = w(hidden, hidden)
    bert[f"{model}/bert/pooler/dense/bias:0"] = w(hidden)
    nsp = {f"{model}/nsp___cls/seq_relationship/kernel:0": w(hidden, 2),
           f"{model}/nsp___cls/seq_relationship/bias:0": w(2)}
    mlm = {f"{model}/mlm___cls/predictions/bias:0": w(30),
           f"{model}/mlm___cls/predictions/transform/dense/kernel:0": w(hidden, hidden),
           f"{model}/mlm___cls/predictions/transform/dense/bias:0": w(hidden),
           f"{model}/mlm___cls/predictions/transform/LayerNorm/gamma:0": w(hidden),
           f"{model}/mlm___cls/predictions/transform/LayerNorm/beta:0": w(hidden)}
    return {"bert": bert, "nsp___cls": nsp, "mlm___cls": mlm}


def flat(layers: dict[str, dict]) -> dict[str, np.ndarray]:
    return {name: value for weights in layers.values() for name, value in weights.items()}


def assert_reads(weights: H5Weights, expected: dict[str, np.ndarray]) -> None:
    assert weights.names() == sorted(expected) == list(weights) and len(weights) == len(expected)
    for name, value in expected.items():
        assert name in weights
        assert weights.shape(name) == value.shape and weights.dtype(name) == value.dtype.name
        got = weights.get(name)
        assert got.dtype == value.dtype and np.array_equal(got, value)
        tensor = weights.get_torch(name)
        assert isinstance(tensor, torch.Tensor) and np.array_equal(tensor.numpy(), value)


def test_a_tf_model_h5_in_transformers_layout(tmp_path):
    layers = bert_for_pre_training_weights()
    save_weights_like_keras2(tmp_path / "tf_model.h5", layers)
    with H5Weights(tmp_path) as weights:  # the folder: its tf_model.h5
        assert weights.path == tmp_path / "tf_model.h5"
        assert weights.layer_names == ["bert", "nsp___cls", "mlm___cls"]
        assert_reads(weights, flat(layers))
    with pytest.raises(CheckpointFormatError, match="closed"):
        weights.get(weights.names()[0])


def test_chunked_attributes_and_dtypes(tmp_path):
    """Hundreds of long names overflow the 64 KiB header (weight_names0, weight_names1...); dtypes other than
    float32, scalars and big-endian datasets read as they are."""
    names = {f"tf_model/encoder/{'very_long_scope_name/' * 8}weight_{i}:0": np.full((2,), i, np.float32)
             for i in range(600)}
    names["tf_model/half:0"] = np.arange(6, dtype=np.float16).reshape(2, 3)
    names["tf_model/double:0"] = np.arange(3, dtype=np.float64)
    names["tf_model/steps:0"] = np.int64(7).reshape(())
    names["tf_model/mask:0"] = np.array([True, False])
    save_weights_like_keras2(tmp_path / "model.h5", {"tf_model": names})
    with h5py.File(tmp_path / "model.h5", "a") as f:
        assert "weight_names0" in f["tf_model"].attrs and "weight_names" not in f["tf_model"].attrs
        f["tf_model"].create_dataset("tf_model/big_endian:0", data=np.arange(4, dtype=">f4"))
        names_attr = [n.decode() for n in f["tf_model"].attrs["weight_names1"]] + ["tf_model/big_endian:0"]
        f["tf_model"].attrs["weight_names1"] = np.asarray([n.encode() for n in names_attr])
    names["tf_model/big_endian:0"] = np.arange(4, dtype=np.float32)
    with H5Weights(tmp_path / "model.h5") as weights:
        assert_reads(weights, names)


def test_a_sharded_tf_checkpoint(tmp_path):
    """transformers' sharded TF save: each shard's root datasets are the weights, named without the model's
    prefix; tf_model.h5.index.json maps every name to its shard."""
    weights = {name.split("/", 1)[1]: value for name, value in flat(bert_for_pre_training_weights()).items()}
    names = sorted(weights)
    shards = {"tf_model-00001-of-00002.h5": names[: len(names) // 2],
              "tf_model-00002-of-00002.h5": names[len(names) // 2:]}
    for shard, members in shards.items():
        with h5py.File(tmp_path / shard, "w") as f:
            for name in members:
                f.create_dataset(name, data=weights[name])
            save_attributes_to_hdf5_group(f, "layer_names", members)
    index = {"metadata": {"total_size": 0}, "weight_map": {n: s for s, ms in shards.items() for n in ms}}
    (tmp_path / "tf_model.h5.index.json").write_text(json.dumps(index))
    with H5Weights(tmp_path) as read:
        assert read.path.name == "tf_model.h5.index.json"
        assert_reads(read, weights)
    (tmp_path / "tf_model-00002-of-00002.h5").unlink()
    with pytest.raises(CheckpointFormatError, match=r"1 are missing: tf_model-00002-of-00002.h5"):
        H5Weights(tmp_path / "tf_model.h5.index.json")


def test_a_whole_model_h5(tmp_path):
    layers = bert_for_pre_training_weights(layers=1, seed=3)
    save_weights_like_keras2(tmp_path / "model.h5", layers, root="model_weights")
    with H5Weights(tmp_path / "model.h5") as weights:
        assert_reads(weights, flat(layers))


_KERAS3 = r"""
import keras
from keras.src.legacy.saving import legacy_h5_format
import h5py
out = sys.argv[1]
keras.utils.set_random_seed(0)
inputs = keras.Input((6,))
x = keras.layers.Dense(5, name="dense")(inputs)
x = keras.layers.LayerNormalization(name="layer_norm")(x)
x = keras.layers.Dense(3, name="head", dtype="float64")(x)
model = keras.Model(inputs, x, name="tiny")
with h5py.File(os.path.join(out, "legacy.h5"), "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)
model.save(os.path.join(out, "whole.h5"))
model.save_weights(os.path.join(out, "keras3.weights.h5"))
np.savez(os.path.join(out, "oracle.npz"),
         **{f"{layer.name}/{w.name}": np.asarray(w.numpy()) for layer in model.layers for w in layer.weights})
"""


def test_files_keras_3_writes_in_the_legacy_layout(tmp_path):
    run_tensorflow(_KERAS3, tmp_path)
    with np.load(tmp_path / "oracle.npz") as oracle:
        expected = {name: oracle[name] for name in oracle.files}
    assert any(v.dtype == np.float64 for v in expected.values())
    for name in ("legacy.h5", "whole.h5"):
        with H5Weights(tmp_path / name) as weights:
            assert_reads(weights, expected)
    with pytest.raises(CheckpointFormatError, match="Keras 3 weights file"):
        H5Weights(tmp_path / "keras3.weights.h5")


# --- what is not a weights file ------------------------------------------------------------------------------------


def test_files_that_are_not_keras_weights_are_refused(tmp_path):
    (tmp_path / "random.h5").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(CheckpointFormatError, match="random.h5 is not an HDF5 file"):
        H5Weights(tmp_path / "random.h5")
    (tmp_path / "pointer.h5").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 9\n")
    with pytest.raises(CheckpointFormatError, match="git-lfs pointer"):
        H5Weights(tmp_path / "pointer.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(CheckpointFormatError, match="no 'layer_names' attribute"):
        H5Weights(tmp_path / "plain.h5")


def test_a_truncated_file_is_refused(tmp_path):
    save_weights_like_keras2(tmp_path / "tf_model.h5", bert_for_pre_training_weights())
    data = (tmp_path / "tf_model.h5").read_bytes()
    for length in (100, len(data) // 2, len(data) - 500):
        (tmp_path / "cut.h5").write_bytes(data[:length])
        with pytest.raises(CheckpointFormatError, match="cut.h5"):
            with H5Weights(tmp_path / "cut.h5") as weights:
                for name in weights:
                    weights.get(name)


def test_a_listed_weight_that_is_absent_is_refused(tmp_path):
    layers = bert_for_pre_training_weights()
    save_weights_like_keras2(tmp_path / "tf_model.h5", layers)
    with h5py.File(tmp_path / "tf_model.h5", "a") as f:
        del f["nsp___cls"]["tf_bert_for_pre_training/nsp___cls/seq_relationship/bias:0"]
    with pytest.raises(CheckpointFormatError, match="lists weight .*seq_relationship/bias:0.* does not hold it"):
        H5Weights(tmp_path / "tf_model.h5")


def test_missing_paths_and_names(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="no tf_model.h5"):
        H5Weights(tmp_path)
    with pytest.raises(ModelFileNotFoundError, match="no such file"):
        H5Weights(tmp_path / "nothing.h5")
    save_weights_like_keras2(tmp_path / "tf_model.h5", bert_for_pre_training_weights())
    with H5Weights(tmp_path) as weights:
        with pytest.raises(VariableNotFoundError, match="closest: .*pooler/dense/kernel:0"):
            weights.get("tf_bert_for_pre_training/bert/pooler/dense/kernels:0")


def test_without_h5py_the_error_names_the_extra(tmp_path, monkeypatch):
    save_weights_like_keras2(tmp_path / "tf_model.h5", bert_for_pre_training_weights())
    monkeypatch.setitem(sys.modules, "h5py", None)  # `import h5py` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'zoo-hub\[tf\]'"):
        H5Weights(tmp_path)


def test_damage_anywhere_is_a_checkpoint_format_error_or_unseen(tmp_path):
    """HDF5 files carry no checksums (transformers wrote none), so damaged weight values cannot be seen; damage
    to the file's structure must surface as CheckpointFormatError, never as h5py's own errors."""
    save_weights_like_keras2(tmp_path / "tf_model.h5", bert_for_pre_training_weights(layers=1))
    original = (tmp_path / "tf_model.h5").read_bytes()
    refused = 0
    for position in np.random.default_rng(0).choice(len(original), 80, replace=False):
        data = bytearray(original)
        data[position] ^= 0xFF
        (tmp_path / "damaged.h5").write_bytes(bytes(data))
        try:
            with H5Weights(tmp_path / "damaged.h5") as weights:
                for name in weights:
                    weights.shape(name), weights.dtype(name), weights.get_torch(name)
        except CheckpointFormatError:
            refused += 1
    assert refused > 0
