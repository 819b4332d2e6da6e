"""Read TensorFlow checkpoints (the TensorBundle format) without TensorFlow.

A checkpoint ``model.ckpt`` is a prefix naming several files (tensorflow/core/util/tensor_bundle/tensor_bundle.cc):

- ``model.ckpt.index``: a sorted table (zoo.convert.leveldb) whose empty key holds a BundleHeaderProto (number of
  data shards, byte order, format version) and whose other keys are the variable names, each mapping to a
  BundleEntryProto (zoo.convert.protobuf): dtype, shape, which shard, offset and size of its bytes, and the masked
  CRC-32C of those bytes;
- ``model.ckpt.data-00000-of-00002``, ``...-00001-of-00002``: the shards, the tensors' raw bytes in row-major,
  little-endian order, one after another.

So reading a variable is a seek and a read of exactly ``size`` bytes, checked against its CRC-32C before anything
is made of it; nothing in the files is executed and TensorFlow is never imported. This is what TensorFlow 1's
``tf.train.Saver`` (Google's BERT, OpenAI's GPT-2 releases) and TensorFlow 2's ``tf.train.Checkpoint`` write
(format V2; the pre-2017 V1 format, a single file without ``.index``, is not read).

A variable saved in slices (a tf.compat.v1 partitioner, or TensorFlow 2's ``MaxShardSizePolicy`` splitting a
variable larger than a shard) has an entry with its dtype, shape and the list of its slices, and each slice is an
entry of its own under an ordered-code key (:func:`slice_key`); the reader puts the slices back together.

String, resource and variant tensors hold no weights (``_CHECKPOINTABLE_OBJECT_GRAPH``, a dataset iterator's
state): they are listed in :attr:`TFCheckpoint.skipped` with the reason, and not returned.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.convert.crc32c import crc32c, extend, unmask
from zoo.convert.leveldb import Table
from zoo.convert.protobuf import (BundleEntry, parse_bundle_entry, parse_bundle_header, parse_tensor_slice,
                                  read_varint)
from zoo.errors import CheckpointFormatError, MissingDependencyError, ModelFileNotFoundError, VariableNotFoundError

if TYPE_CHECKING:  # annotations only: importing this module loads neither numpy nor torch
    import numpy as np
    import torch

logger = logging.getLogger(__name__)

__all__ = ["TFCheckpoint", "resolve_prefix", "slice_key"]

BUNDLE_VERSION = 1  # kTensorBundleVersion: the newest format version this reader understands

#: dtype name -> bytes per element, for every dtype whose variables are read; numpy has all but the last five
ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1,
            "uint16": 2, "uint32": 4, "uint64": 8, "bool": 1, "complex64": 8, "complex128": 16,
            "bfloat16": 2, "float8_e5m2": 1, "float8_e4m3fn": 1, "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1}
NOT_IN_NUMPY = ("bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2fnuz")

_SKIP_REASONS = {
    "string": "a string tensor (bookkeeping such as the object graph, not weights)",
    "resource": "a resource handle (not weights)",
    "variant": "a variant tensor (a dataset iterator's or other object's state, not weights)",
}
_DATA_SHARD = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - numpy comes with the tf extra
        raise MissingDependencyError("reading TensorFlow checkpoints needs numpy, which is not installed; install "
                                     "the tf extra: pip install 'zoo-hub[tf]'") from exc
    return numpy


def _checkpoint_file_prefix(folder: Path) -> Path | None:
    """The prefix named by the folder's ``checkpoint`` file (text-format CheckpointState), if it names one that
    is there. An absolute path (TensorFlow writes them) is looked for in this folder first: the folder may be a
    copy, or have been moved, and its own files are the ones meant."""
    try:
        text = (folder / "checkpoint").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r'^\s*model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    if match is None:
        return None
    # text format escapes C-style, non-ASCII bytes as octal: undo that, then read the bytes as UTF-8
    raw = match.group(1).encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
    named = Path(raw.decode("utf-8", "replace"))
    for candidate in ((folder / named.name, named) if named.is_absolute() else (folder / named,)):
        if Path(f"{candidate}.index").is_file():
            return candidate
    return None


def resolve_prefix(path: str | os.PathLike) -> Path:
    """The checkpoint prefix (``.../model.ckpt``) that ``path`` means: the prefix itself, its ``.index`` or one
    of its ``.data-*`` files, or a folder whose ``checkpoint`` file names one or that holds exactly one
    ``*.index``."""
    p = Path(path)
    if p.is_dir():
        named = _checkpoint_file_prefix(p)
        if named is not None:
            return named
        indexes = sorted(p.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        if not indexes:
            raise ModelFileNotFoundError(
                f"no TensorFlow checkpoint in {p}: it has no *.index file (and no 'checkpoint' file naming one); "
                f"pass the checkpoint's prefix, e.g. {p / 'model.ckpt'} for model.ckpt.index + model.ckpt.data-*")
        raise ModelFileNotFoundError(
            f"{p} holds {len(indexes)} TensorFlow checkpoints ({', '.join(i.name for i in indexes)}) and no "
            f"'checkpoint' file says which is current; pass one prefix, e.g. {indexes[-1].with_suffix('')}")
    if p.name.endswith(".index") and p.is_file():
        return p.with_suffix("")
    if Path(f"{p}.index").is_file():
        return p
    shard = _DATA_SHARD.match(p.name)
    if shard and Path(f"{p.parent / shard['prefix']}.index").is_file():
        return p.parent / shard["prefix"]
    found = sorted(q.name for q in p.parent.glob("*.index")) if p.parent.is_dir() else []
    hint = f" ({p.parent} has {', '.join(found)})" if found else ""
    raise ModelFileNotFoundError(
        f"no TensorFlow checkpoint at {p}: expected {p}.index next to its .data-* shards{hint}; pass the prefix "
        f"(the path without .index) or the folder holding it")


def _swap_in_place(buffer: bytearray, kind: str) -> None:  # pragma: no cover - big-endian hosts only
    """Little-endian bytes to this machine's order (a complex number is two floats, each swapped on its own)."""
    unit = ITEMSIZE[kind] // (2 if kind.startswith("complex") else 1)
    if unit > 1 and buffer:
        _numpy().frombuffer(buffer, dtype=f"u{unit}").byteswap(inplace=True)


def _checksum(data: bytearray, entry: BundleEntry) -> int:
    """The CRC-32C TensorFlow stores for an entry's bytes (tensor_bundle.cc, BundleWriter::Add): of the bytes
    themselves for every dtype but two. A string tensor is written as the varint64 length of each element, a
    masked checksum of those lengths, then the characters, and its CRC covers each length as a little-endian
    uint32 (uint64 above 4 GiB), not its varint, then the length checksum and the characters. A variant tensor is
    ``varint64 length | serialized proto | masked running checksum`` per element, its CRC covering each length as
    a uint64. Bytes that do not parse that way get -1, which never matches."""
    kind = entry.dtype_name
    if kind not in ("string", "variant"):
        return crc32c(data)
    count = math.prod(entry.shape)
    crc, pos = 0, 0
    try:
        if kind == "string":
            lengths = []
            for _ in range(count):
                length, pos = read_varint(data, pos, "string tensor")
                lengths.append(length)
                crc = extend(crc, struct.pack("<I" if length <= 0xFFFFFFFF else "<Q", length))
            if unmask(struct.unpack_from("<I", data, pos)[0]) != crc:
                return -1  # the lengths' own checksum fails
            crc = extend(crc, memoryview(data)[pos:])
            return crc if pos + 4 + sum(lengths) == len(data) else -1
        for _ in range(count):
            length, pos = read_varint(data, pos, "variant tensor")
            crc = extend(extend(crc, struct.pack("<Q", length)), memoryview(data)[pos:pos + length])
            pos += length
            crc = extend(crc, memoryview(data)[pos:pos + 4])
            pos += 4
        return crc if pos == len(data) else -1
    except (CheckpointFormatError, struct.error):
        return -1


def _as_numpy(buffer: bytearray, entry: BundleEntry) -> np.ndarray:
    """An array over ``buffer`` (native byte order already); bfloat16 and float8 widened to float32."""
    np = _numpy()
    kind = entry.dtype_name
    if kind == "bfloat16":  # the top half of a float32: widening is a shift
        bits = np.frombuffer(buffer, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(entry.shape)
    if kind in NOT_IN_NUMPY:
        return _as_torch(buffer, entry).float().numpy()
    return np.frombuffer(buffer, dtype=np.dtype(kind)).reshape(entry.shape)


def _as_torch(buffer: bytearray, entry: BundleEntry) -> torch.Tensor:
    """A tensor over ``buffer`` (native byte order already), no copy."""
    import torch

    dtype = getattr(torch, entry.dtype_name, None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointFormatError(f"this torch ({torch.__version__}) has no {entry.dtype_name} dtype; upgrade "
                                    f"torch to read this variable")
    if not buffer:
        return torch.empty(entry.shape, dtype=dtype)
    return torch.frombuffer(buffer, dtype=dtype).reshape(entry.shape)


def _ordered_number(value: int) -> bytes:
    """OrderedCode::WriteNumIncreasing (tensorflow/core/lib/strings/ordered_code.cc): a length byte, then the
    value big-endian without leading zero bytes."""
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


_LENGTH_TO_HEADER_BITS = ((0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0), (0xFC, 0), (0xFE, 0),
                          (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0))  # ordered_code.cc's kLengthToHeaderBits


def _ordered_signed(value: int) -> bytes:
    """OrderedCode::WriteSignedNumIncreasing: sign bit, then as many length bits as bytes follow the first, then
    the value, two's complement; n bytes hold [-2**(7n-1), 2**(7n-1))."""
    x = ~value if value < 0 else value
    if x < 64:
        return bytes([(0x80 ^ value) & 0xFF])
    length = (x.bit_length() + 1 + 6) // 7  # kBitsToLength
    begin = bytearray((value & (1 << 80) - 1).to_bytes(10, "big")[10 - length:])  # sign-extended
    begin[0] ^= _LENGTH_TO_HEADER_BITS[length][0]
    begin[1] ^= _LENGTH_TO_HEADER_BITS[length][1]
    return bytes(begin)


def slice_key(name: str, extents: tuple[tuple[int, int], ...]) -> bytes:
    """The index key under which a slice of a partitioned variable is stored (checkpoint::EncodeTensorNameSlice
    in tensorflow/core/util/saved_tensor_slice_util.cc): ordered-code 0, the name, the rank, then each
    dimension's start and length (-1: all of it)."""
    escaped = b"".join(b"\x00\xff" if byte == 0 else b"\xff\x00" if byte == 0xFF else bytes([byte])
                       for byte in name.encode("utf-8"))
    key = _ordered_number(0) + escaped + b"\x00\x01" + _ordered_number(len(extents))
    for start, length in extents:
        key += _ordered_signed(start) + _ordered_signed(length)
    return key


class TFCheckpoint:
    """A TensorFlow checkpoint, read lazily: the index at construction, each tensor when asked for.

    ``TFCheckpoint("model.ckpt")`` (the prefix), ``TFCheckpoint("folder/")`` (its ``checkpoint`` file, or its only
    ``*.index``). Iterating gives the variable names; ``get(name)`` a numpy array, ``get_torch(name)`` a tensor.
    Every tensor's size and CRC-32C are checked when it is read; :meth:`verify` checks them all. A variable stored
    in slices (tf.compat.v1 partitioners, TensorFlow 2's ``MaxShardSizePolicy`` for variables larger than a
    shard) is put back together.
    """

    def __init__(self, prefix_or_folder: str | os.PathLike) -> None:
        self.prefix = resolve_prefix(prefix_or_folder)
        self.index_path = Path(f"{self.prefix}.index")
        header = None
        entries: dict[str, BundleEntry] = {}
        self._slice_entries: dict[bytes, BundleEntry] = {}  # ordered-code key -> one slice's bytes
        for key, value in Table(self.index_path).items():
            if key == b"":
                header = parse_bundle_header(value)
            elif key[:1] == b"\x00":
                self._slice_entries[key] = parse_bundle_entry(value)
            else:
                try:
                    name = key.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CheckpointFormatError(f"{self.index_path} has a variable name that is not UTF-8 "
                                                f"({key!r}): the index is corrupt") from exc
                entries[name] = parse_bundle_entry(value)
        if header is None:
            raise CheckpointFormatError(
                f"{self.index_path} is a sorted table but has no bundle header (the empty key): it is not a "
                f"TensorFlow checkpoint index (another LevelDB table?)")
        if header.big_endian:
            raise CheckpointFormatError(f"{self.index_path} is a big-endian checkpoint; zoo reads little-endian "
                                        f"ones: re-save it with TensorFlow on a little-endian machine (x86, ARM)")
        if header.min_consumer > BUNDLE_VERSION:
            raise CheckpointFormatError(
                f"{self.index_path} needs a reader of bundle version {header.min_consumer} or newer (this one "
                f"reads version {BUNDLE_VERSION}); re-save it with an older TensorFlow or tf.train.Saver")
        self.num_shards = header.num_shards
        self.data_paths = [Path(f"{self.prefix}.data-{i:05d}-of-{self.num_shards:05d}")
                           for i in range(self.num_shards)]
        self._all = entries
        self._entries: dict[str, BundleEntry] = {}
        #: name -> why the variable is not read (string, resource and variant tensors, exotic dtypes)
        self.skipped: dict[str, str] = {}
        for name, entry in entries.items():
            reason = self._unreadable(entry)
            if reason:
                self.skipped[name] = reason
            else:
                self._entries[name] = entry
        self._check_shards()
        if self.skipped:
            shown = ", ".join(sorted(self.skipped)[:5]) + (", ..." if len(self.skipped) > 5 else "")
            logger.info("%s: skipped %d variable(s) that hold no weights (%s); see TFCheckpoint.skipped",
                        self.prefix.name, len(self.skipped), shown)
        self._names = sorted(self._entries)

    @staticmethod
    def _unreadable(entry: BundleEntry) -> str:
        """Why a variable is skipped rather than read ("" if it is read)."""
        name = entry.dtype_name
        if name in _SKIP_REASONS:
            return _SKIP_REASONS[name]
        if name not in ITEMSIZE:
            return f"dtype {name}, which neither numpy nor torch has (quantized or sub-byte types)"
        return ""

    def _stored(self) -> Iterator[tuple[str, BundleEntry]]:
        """(what to call it, entry) of everything with bytes in a shard: whole variables and slices."""
        for name, entry in self._all.items():
            if not entry.slices:
                yield repr(name), entry
        for key, entry in self._slice_entries.items():
            yield f"a slice ({key!r})", entry

    def _check_shards(self) -> None:
        """Every shard an entry uses exists and is long enough: a missing or truncated download fails here, at
        once, rather than at the first tensor it lacks."""
        sizes: dict[int, int] = {}
        missing: list[str] = []
        for what, entry in self._stored():
            if not 0 <= entry.shard_id < self.num_shards or entry.offset < 0 or entry.size < 0:
                raise CheckpointFormatError(
                    f"variable {what} of {self.index_path} points to shard {entry.shard_id}, offset "
                    f"{entry.offset}, size {entry.size}, but the checkpoint has {self.num_shards} shard(s): the "
                    f"index is corrupt; re-download it")
            if entry.shard_id not in sizes:
                path = self.data_paths[entry.shard_id]
                try:
                    sizes[entry.shard_id] = path.stat().st_size
                except OSError:
                    sizes[entry.shard_id] = -1
                    missing.append(path.name)
            end = entry.offset + entry.size
            if sizes[entry.shard_id] >= 0 and end > sizes[entry.shard_id]:
                raise CheckpointFormatError(
                    f"{self.data_paths[entry.shard_id]} is truncated: it is {sizes[entry.shard_id]} bytes long but "
                    f"variable {what} lies at bytes {entry.offset}..{end}; re-download it")
        if missing:
            raise CheckpointFormatError(
                f"the checkpoint {self.prefix} has {self.num_shards} data shard(s) and {len(missing)} of them are "
                f"missing: {', '.join(sorted(missing))} (expected next to {self.index_path.name}); download them "
                f"too")

    # --- the mapping interface ----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names of the variables that can be read, sorted bytewise as the index stores them."""
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __repr__(self) -> str:
        return f"TFCheckpoint({str(self.prefix)!r}, {len(self)} variables, {self.num_shards} shard(s))"

    def _entry(self, name: str) -> BundleEntry:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        if name in self.skipped:
            raise CheckpointFormatError(f"variable {name!r} of {self.prefix} is not read: it is "
                                        f"{self.skipped[name]}")
        close = difflib.get_close_matches(name, self._names, n=3)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise VariableNotFoundError(f"the checkpoint {self.prefix} has no variable {name!r} ({len(self)} "
                                    f"variables{hint})")

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name).shape

    def dtype(self, name: str) -> str:
        """numpy's name of the variable's dtype (``"float32"``, ``"int64"``, ``"bool"``...); ``"bfloat16"`` and
        the ``"float8_*"`` types for those numpy lacks."""
        return self._entry(name).dtype_name

    def nbytes(self, name: str) -> int:
        """The bytes the variable takes in the shards (all its slices, for a partitioned one)."""
        entry = self._entry(name)
        return sum(e.size for _, e in self._slices(name, entry)) if entry.slices else entry.size

    # --- reading ------------------------------------------------------------------------------------------------

    def _slices(self, name: str, entry: BundleEntry) -> list[tuple[tuple[slice, ...], BundleEntry]]:
        """(where in the whole variable, entry) of each slice of a partitioned variable; checks that they fit
        and cover it."""
        parts = []
        covered = 0
        for proto in entry.slices:
            extents = parse_tensor_slice(proto)
            if len(extents) != len(entry.shape):
                raise CheckpointFormatError(f"a slice of variable {name!r} of {self.prefix} has rank "
                                            f"{len(extents)}, the variable {len(entry.shape)}: the index is corrupt")
            region = tuple(slice(0, dim) if length < 0 else slice(start, start + length)
                           for (start, length), dim in zip(extents, entry.shape))
            part = self._slice_entries.get(slice_key(name, tuple((0, -1) if length < 0 else (start, length)
                                                                 for start, length in extents)))
            shape = tuple(r.stop - r.start for r in region)
            if part is None or part.shape != shape or part.dtype != entry.dtype or any(
                    r.start < 0 or r.stop > d for r, d in zip(region, entry.shape)):
                raise CheckpointFormatError(
                    f"slice {extents} of variable {name!r} of {self.prefix} is missing from the index or does not "
                    f"fit the variable's shape {entry.shape}: the index is corrupt; re-download it")
            covered += math.prod(shape)
            parts.append((region, part))
        if covered != math.prod(entry.shape):
            raise CheckpointFormatError(f"the slices of variable {name!r} of {self.prefix} cover {covered} of its "
                                        f"{math.prod(entry.shape)} elements: the checkpoint is incomplete")
        return parts

    def _read(self, name: str, entry: BundleEntry) -> bytearray:
        """One whole variable's (or one slice's) bytes, exactly ``size`` of them, size and CRC-32C checked."""
        if entry.unknown_rank or any(d < 0 for d in entry.shape):
            raise CheckpointFormatError(f"variable {name!r} of {self.prefix} has an unknown shape "
                                        f"{entry.shape}: the index is corrupt")
        expected = math.prod(entry.shape) * ITEMSIZE[entry.dtype_name]
        if entry.size != expected:
            raise CheckpointFormatError(
                f"variable {name!r} of {self.prefix} is stored as {entry.size} bytes, but a {entry.dtype_name} "
                f"tensor of shape {entry.shape} takes {expected}: the index is corrupt; re-download it")
        buffer = self._read_bytes(name, entry)
        if sys.byteorder != "little":  # pragma: no cover - no big-endian machine in CI
            _swap_in_place(buffer, entry.dtype_name)
        return buffer

    def _read_bytes(self, name: str, entry: BundleEntry) -> bytearray:
        """Bytes ``offset .. offset + size`` of the entry's shard, their CRC-32C checked (skipped variables'
        too: see :func:`_checksum`)."""
        buffer = bytearray(entry.size)
        path = self.data_paths[entry.shard_id]
        try:
            with open(path, "rb") as f:
                f.seek(entry.offset)
                got = f.readinto(buffer)
        except OSError as exc:
            raise CheckpointFormatError(f"cannot read variable {name!r} from {path}: {exc}") from exc
        if got != entry.size:
            raise CheckpointFormatError(f"{path} is truncated: variable {name!r} needs bytes "
                                        f"{entry.offset}..{entry.offset + entry.size}, the file ends at "
                                        f"{entry.offset + got}; re-download it")
        actual = _checksum(buffer, entry)
        if actual != unmask(entry.crc32c):
            raise CheckpointFormatError(
                f"variable {name!r} in {path} fails its checksum (stored crc32c {unmask(entry.crc32c):#010x}, "
                f"computed {actual:#010x}): the file is corrupt; re-download it")
        return buffer

    def _value(self, name: str, convert: Any, zeros: Any) -> Any:
        entry = self._entry(name)
        if not entry.slices:
            return convert(self._read(name, entry), entry)
        out = None
        for region, part in self._slices(name, entry):
            value = convert(self._read(name, part), part)
            if out is None:
                out = zeros(entry.shape, value.dtype)
            out[region] = value
        return out

    def get(self, name: str) -> np.ndarray:
        """The variable as a numpy array of its dtype and shape. bfloat16 and float8 variables, which numpy has
        no dtype for, come widened to float32, exactly (use :meth:`get_torch` to keep them as they are)."""
        np = _numpy()
        return self._value(name, _as_numpy, lambda shape, dtype: np.zeros(shape, dtype))

    def get_torch(self, name: str) -> torch.Tensor:
        """The variable as a CPU tensor of its own dtype (torch.bfloat16 for bfloat16) and shape. It owns the
        bytes read (no second copy, unless the variable was stored in slices)."""
        import torch

        return self._value(name, _as_torch, lambda shape, dtype: torch.zeros(shape, dtype=dtype))

    __getitem__ = get

    def verify(self) -> None:
        """Read every stored tensor once (shard by shard, in file order) and check its size and CRC-32C, the
        skipped variables and every slice included; raises CheckpointFormatError naming each one that fails."""
        failures: list[str] = []
        for what, entry in sorted(self._stored(), key=lambda item: (item[1].shard_id, item[1].offset)):
            try:
                if entry.dtype_name in ITEMSIZE:
                    self._read(what.strip("'"), entry)
                else:
                    self._read_bytes(what.strip("'"), entry)
            except CheckpointFormatError as exc:
                failures.append(str(exc))
        for name, entry in self._entries.items():
            if entry.slices:
                try:
                    self._slices(name, entry)
                except CheckpointFormatError as exc:
                    failures.append(str(exc))
        if failures:
            raise CheckpointFormatError(f"{len(failures)} variable(s) of {self.prefix} failed verification:\n"
                                        + "\n".join(failures))
