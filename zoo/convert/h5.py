"""Read Keras ``tf_model.h5`` weight files as transformers' TensorFlow classes wrote them, through h5py.

The layout is Keras 2's "legacy" HDF5 weights format (keras/saving/hdf5_format.py, save_weights_to_hdf5_group),
which transformers 4's ``TFPreTrainedModel.save_pretrained`` used and ``load_tf_weights_from_h5`` read
(src/transformers/modeling_tf_utils.py):

- the file's root attribute ``layer_names`` lists the model's top-level layers (``["tf_bert_model"]``, or
  ``["bert", "mlm___cls", "nsp___cls"]`` for a model with heads);
- each layer is a group whose attribute ``weight_names`` lists its weights' full TensorFlow names, such as
  ``tf_bert_model/bert/encoder/layer_._0/attention/self/query/kernel:0``, and holds each weight as the dataset at
  that name below the group (``/tf_bert_model/tf_bert_model/bert/.../kernel:0``);
- an attribute too large for an HDF5 object header is split into ``layer_names0``, ``layer_names1``...
  (load_attributes_from_hdf5_group).

A checkpoint transformers sharded (``tf_model.h5.index.json`` + ``tf_model-00001-of-00002.h5``...) stores each
weight as a root dataset instead, named without the model's prefix (``bert/embeddings/word_embeddings/weight:0``),
and lists those names in ``layer_names``; both are read. So is a whole-model ``.h5`` (``model.save``), whose
weights are the same layout under the group ``model_weights``. Names are returned as stored: the mapping onto a
model's parameters (dropping the model's prefix and ``:0``) is the caller's. Keras 3's own ``.weights.h5``
(``layers/dense/vars/0``: positions, no names) is refused with a clear error.

h5py is imported only here, when a file is opened: ``pip install 'zoo-hub[tf]'``.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import CheckpointFormatError, MissingDependencyError, ModelFileNotFoundError, VariableNotFoundError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["H5Weights", "INDEX_NAME", "WEIGHTS_NAME"]

WEIGHTS_NAME = "tf_model.h5"  # transformers' TF2_WEIGHTS_NAME
INDEX_NAME = "tf_model.h5.index.json"  # TF2_WEIGHTS_INDEX_NAME


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError(
            "reading tf_model.h5 files needs h5py, which is not installed; install the tf extra: "
            "pip install 'zoo-hub[tf]'") from exc
    return h5py


def _attribute_list(obj: Any, name: str) -> list[str] | None:
    """A list attribute as Keras saved it (whole, or in numbered chunks), decoded; None if absent."""
    if name in obj.attrs:
        values = list(obj.attrs[name])
    elif f"{name}0" in obj.attrs:
        values, chunk = [], 0
        while f"{name}{chunk}" in obj.attrs:
            values.extend(obj.attrs[f"{name}{chunk}"])
            chunk += 1
    else:
        return None
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


#: what h5py raises for a damaged file, besides OSError: HDF5's errors surface as RuntimeError, KeyError or
#: ValueError depending on where the damage is met, a garbled attribute as UnicodeDecodeError
_HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeDecodeError)


@contextlib.contextmanager
def _damaged(path: Path, what: str) -> Iterator[None]:
    """Any error h5py raises while ``what`` is read becomes a CheckpointFormatError naming the file."""
    try:
        yield
    except CheckpointFormatError:
        raise
    except _HDF5_ERRORS as exc:
        raise CheckpointFormatError(f"cannot read {what} from {path} ({type(exc).__name__}: {exc}): the file is "
                                    f"truncated or corrupt; re-download it") from exc


def _looks_like_lfs_pointer(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(100).startswith(b"version https://git-lfs")
    except OSError:
        return False


class H5Weights:
    """The weights of a ``tf_model.h5`` (or of a sharded one, through its ``.index.json``), read lazily.

    ``H5Weights(path)``: the ``.h5`` file, the ``tf_model.h5.index.json`` of a sharded checkpoint, or a folder
    holding either. Same interface as :class:`zoo.convert.TFCheckpoint`: ``names()``, ``shape``, ``dtype``,
    ``get`` (numpy), ``get_torch``; files stay open until :meth:`close` (or the end of a ``with`` block).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._h5py = _h5py()
        self.path = self._resolve(Path(path))
        self._files: dict[Path, Any] = {}
        self._where: dict[str, tuple[Path, str]] = {}  # name -> (file, dataset path inside it)
        #: name -> why the dataset is not read (not numeric)
        self.skipped: dict[str, str] = {}
        self.layer_names: list[str] = []
        try:
            if self.path.name.endswith(".json"):
                self._open_index(self.path)
            else:
                self._open_file(self.path)
        except BaseException:
            self.close()
            raise
        self._names = sorted(n for n in self._where if n not in self.skipped)

    @staticmethod
    def _resolve(p: Path) -> Path:
        if p.is_dir():
            for name in (WEIGHTS_NAME, INDEX_NAME):
                if (p / name).is_file():
                    return p / name
            found = sorted(q.name for q in p.glob("*.h5"))
            if len(found) == 1:
                return p / found[0]
            raise ModelFileNotFoundError(
                f"no {WEIGHTS_NAME} (nor {INDEX_NAME}) in {p}" + (f"; it has {', '.join(found)}" if found else "")
                + ": pass the .h5 file itself")
        if not p.is_file():
            raise ModelFileNotFoundError(f"no such file: {p} (expected a Keras .h5 weights file such as "
                                         f"{WEIGHTS_NAME})")
        return p

    def _open_index(self, index: Path) -> None:
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointFormatError(f"{index} is not a sharded-checkpoint index (JSON with a 'weight_map' of "
                                        f"weight name -> shard file): {exc}; re-download it") from exc
        missing = [s for s in shards if not (index.parent / s).is_file()]
        if missing:
            raise CheckpointFormatError(f"{index} names {len(shards)} shard(s) and {len(missing)} are missing: "
                                        f"{', '.join(missing)}; download them too")
        for shard in shards:
            self._open_file(index.parent / shard)
        absent = sorted(set(weight_map) - set(self._where))
        if absent:
            raise CheckpointFormatError(f"{index} lists {len(absent)} weight(s) that no shard holds (e.g. "
                                        f"{absent[0]!r}): a shard is stale or truncated; re-download it")

    def _open_file(self, path: Path) -> None:
        h5py = self._h5py
        try:
            f = h5py.File(path, "r")
        except _HDF5_ERRORS as exc:
            if _looks_like_lfs_pointer(path):
                raise CheckpointFormatError(
                    f"{path} is a git-lfs pointer, not the weights: the repository was cloned without git-lfs; "
                    f"run `git lfs pull` in it, or download the file with `zoo download`") from exc
            raise CheckpointFormatError(f"{path} is not an HDF5 file ({exc}): it is truncated or not a Keras "
                                        f"weights file; re-download it") from exc
        self._files[path] = f
        with _damaged(path, "the layout (layer_names, weight_names)"):
            self._read_layout(path, f)

    def _read_layout(self, path: Path, f: Any) -> None:
        h5py = self._h5py
        root = f["model_weights"] if "model_weights" in f and "layer_names" not in f.attrs else f
        layers = _attribute_list(root, "layer_names")
        if layers is None:
            if "layers" in f and "vars" in f:
                raise CheckpointFormatError(
                    f"{path} is a Keras 3 weights file (.weights.h5: weights by position, without TensorFlow "
                    f"names), not the layout transformers' TF classes wrote; save it from Keras with the legacy "
                    f"format (model.save('model.h5')) or from PyTorch as safetensors")
            raise CheckpointFormatError(f"{path} has no 'layer_names' attribute: it is an HDF5 file but not Keras "
                                        f"weights saved by transformers' TF classes or Keras' save_weights")
        self.layer_names.extend(layers)
        for layer in layers:
            if layer not in root:
                raise CheckpointFormatError(f"{path} lists layer {layer!r} in 'layer_names' but does not hold it: "
                                            f"the file is truncated or corrupt; re-download it")
            obj = root[layer]
            if isinstance(obj, h5py.Dataset):  # a shard of a sharded checkpoint: the layer is the weight
                self._add(layer, path, obj)
                continue
            for weight in _attribute_list(obj, "weight_names") or []:
                if weight not in obj:
                    raise CheckpointFormatError(f"layer {layer!r} of {path} lists weight {weight!r} but does not "
                                                f"hold it: the file is truncated or corrupt; re-download it")
                self._add(weight, path, obj[weight])

    def _add(self, name: str, path: Path, dataset: Any) -> None:
        if name in self._where:
            first_path, first = self._where[name]
            if first_path == path and self._files[path][first].shape == dataset.shape:
                return  # Keras lists a shared layer's weights (a head's tied embeddings) under each layer using it
            raise CheckpointFormatError(f"weight {name!r} is stored twice (in {self._where[name][0]} and "
                                        f"{path}): the files are not one checkpoint")
        if not isinstance(dataset, self._h5py.Dataset):
            raise CheckpointFormatError(f"weight {name!r} of {path} is a group, not a dataset: the file is "
                                        f"corrupt")
        self._where[name] = (path, dataset.name)
        if dataset.dtype.kind not in "biufc":
            self.skipped[name] = f"an HDF5 dataset of dtype {dataset.dtype}, not a numeric tensor"

    # --- the mapping interface ----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The weights' names as stored (``tf_bert_model/bert/.../kernel:0``), sorted."""
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._where and name not in self.skipped

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __repr__(self) -> str:
        return f"H5Weights({str(self.path)!r}, {len(self)} weights)"

    def _dataset(self, name: str) -> Any:
        if name not in self._where:
            close = difflib.get_close_matches(name, self._names, n=3)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise VariableNotFoundError(f"{self.path} has no weight {name!r} ({len(self)} weights{hint})")
        if name in self.skipped:
            raise CheckpointFormatError(f"weight {name!r} of {self.path} is not read: it is {self.skipped[name]}")
        path, inner = self._where[name]
        if path not in self._files:
            raise CheckpointFormatError(f"{self.path} is closed; open it again to read {name!r}")
        with _damaged(path, f"weight {name!r}"):
            return self._files[path][inner]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self._dataset(name).shape)

    def dtype(self, name: str) -> str:
        return self._dataset(name).dtype.name

    def get(self, name: str) -> np.ndarray:
        """The weight as a numpy array in native byte order."""
        dataset = self._dataset(name)
        with _damaged(self._where[name][0], f"weight {name!r}"):
            array = dataset[()]
        import numpy

        array = numpy.asarray(array)
        return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))

    def get_torch(self, name: str) -> torch.Tensor:
        import torch

        array = self.get(name)
        return torch.from_numpy(array if array.flags.writeable else array.copy())

    __getitem__ = get

    def close(self) -> None:
        for f in self._files.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - closing is best effort; the file may already be gone
                pass
        self._files.clear()

    def __enter__(self) -> H5Weights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
