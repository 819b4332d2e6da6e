"""Import TensorFlow checkpoints without TensorFlow.

The readers (this package's modules, importable without torch or numpy until a tensor is read):

- :class:`TFCheckpoint` (zoo.convert.tensorbundle): a TensorFlow 1 or 2 checkpoint, ``model.ckpt.index`` +
  ``model.ckpt.data-NNNNN-of-MMMMM``, read from its own format (a LevelDB sorted table of protobuf entries, raw
  little-endian tensor bytes), every tensor's CRC-32C checked;
- :class:`H5Weights` (zoo.convert.h5): a Keras ``tf_model.h5`` as transformers' TF classes saved it, through h5py.

Both offer ``names()``, ``shape(name)``, ``dtype(name)``, ``get(name)`` (numpy) and ``get_torch(name)``. See
docs/convert.md.
"""

from __future__ import annotations

from zoo.lazy import lazy_exports

__all__ = ["H5Weights", "TFCheckpoint"]

_LAZY = {"TFCheckpoint": "zoo.convert.tensorbundle", "H5Weights": "zoo.convert.h5"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
