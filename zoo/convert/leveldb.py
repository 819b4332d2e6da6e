"""A reader of the sorted-string tables (SSTables) that TensorFlow checkpoints use as their ``.index`` file.

The format is LevelDB's table format (https://github.com/google/leveldb/blob/main/doc/table_format.md), which
TensorFlow carries as tensorflow/core/lib/io/{table,block,format}.cc:

- The file ends with a 48-byte **footer**: the block handle of the metaindex block, the block handle of the index
  block (each handle two varint64s, offset then size), zero padding to 40 bytes, and the 8-byte magic number
  0xdb4775248b80fb57, little-endian.
- Every **block** is followed by a 5-byte trailer: the compression type (0 none, 1 snappy) and the masked CRC-32C
  of the block and that type byte. TensorFlow writes bundle indexes uncompressed.
- A block holds **prefix-compressed entries** ``shared (varint32) | non_shared (varint32) | value_length (varint32)
  | key[shared:] | value``: each key shares its first ``shared`` bytes with the previous one. Every few entries a
  **restart point** stores its key whole (shared = 0); the block ends with the restart offsets (uint32 each) and
  their count (uint32), so a lookup can binary-search the restart points before scanning.
- The **index block** maps, for each data block, a key at least as large as the block's last key (and smaller
  than the next block's first) to that block's handle. Keys are compared bytewise.

Everything is checked against the file (bounds, checksums, sort order, restart points) before it is trusted: a
damaged or foreign file is a :class:`~zoo.errors.CheckpointFormatError`, never an exception from deep inside.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from zoo.convert.crc32c import crc32c, unmask
from zoo.convert.protobuf import read_varint
from zoo.errors import CheckpointFormatError

__all__ = ["FOOTER_SIZE", "MAGIC", "Block", "BlockHandle", "Table"]

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two handles of at most 10 + 10 bytes, padded to 40, then the magic
TRAILER_SIZE = 5
COMPRESSION = {0: "none", 1: "snappy", 2: "zstd"}


class BlockHandle(NamedTuple):
    offset: int
    size: int


def _decode_handle(data: bytes, pos: int, what: str) -> tuple[BlockHandle, int]:
    offset, pos = read_varint(data, pos, what)
    size, pos = read_varint(data, pos, what)
    return BlockHandle(offset, size), pos


class Block:
    """One block's entries, decoded and checked: ``keys`` sorted bytewise, ``values`` aligned with them."""

    def __init__(self, contents: bytes, what: str) -> None:
        self.what = what
        n = len(contents)
        if n < 4:
            raise CheckpointFormatError(f"{what} is {n} bytes long, too short for its restart count")
        num_restarts = struct.unpack_from("<I", contents, n - 4)[0]
        limit = n - 4 * (1 + num_restarts)  # where the entries end and the restart array begins
        if num_restarts == 0 and n > 4 or limit < 0:
            raise CheckpointFormatError(f"{what} claims {num_restarts} restart points, which do not fit in its "
                                        f"{n} bytes: the index is corrupt")
        restarts = struct.unpack_from(f"<{num_restarts}I", contents, limit)
        self.keys: list[bytes] = []
        self.values: list[bytes] = []
        starts: dict[int, tuple[int, int]] = {}  # entry offset -> (entry index, shared), for the restart points
        key = b""
        pos = 0
        while pos < limit:
            start = pos
            shared, pos = read_varint(contents, pos, what)
            non_shared, pos = read_varint(contents, pos, what)
            value_length, pos = read_varint(contents, pos, what)
            if shared > len(key) or pos + non_shared + value_length > limit:
                raise CheckpointFormatError(f"an entry of {what} (at byte {start}) points outside the block or "
                                            f"shares more of the previous key than it has: the index is corrupt")
            new_key = key[:shared] + contents[pos:pos + non_shared]
            pos += non_shared
            if self.keys and new_key <= key:
                raise CheckpointFormatError(f"the keys of {what} are not in order ({key!r} then {new_key!r}): "
                                            f"the index is corrupt")
            starts[start] = (len(self.keys), shared)
            key = new_key
            self.keys.append(key)
            self.values.append(contents[pos:pos + value_length])
            pos += value_length
        if limit and (restarts[0] != 0 or any(starts.get(r, (0, -1))[1] != 0 for r in restarts)
                      or any(a >= b for a, b in zip(restarts, restarts[1:]))):
            raise CheckpointFormatError(f"a restart point of {what} is not the start of a whole key: the index is "
                                        f"corrupt")
        self.restarts = restarts
        self._restart_entries = [starts[r][0] for r in restarts] if limit else []
        self._restart_keys = [self.keys[i] for i in self._restart_entries]

    def __len__(self) -> int:
        return len(self.keys)

    def seek(self, key: bytes) -> int:
        """Index of the first entry whose key is >= ``key`` (``len(self)`` if none), found as LevelDB does:
        binary search over the restart points' whole keys, then a scan from the last one below ``key``."""
        if not self.keys:
            return 0
        lo = bisect.bisect_right(self._restart_keys, key) - 1
        i = self._restart_entries[lo] if lo >= 0 else 0
        while i < len(self.keys) and self.keys[i] < key:
            i += 1
        return i

    def get(self, key: bytes) -> bytes | None:
        i = self.seek(key)
        return self.values[i] if i < len(self.keys) and self.keys[i] == key else None


class Table:
    """An SSTable file: ``items()`` in key order, ``get(key)``. Blocks are read when needed, not all at once."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.file_size = self.path.stat().st_size
        except OSError as exc:
            raise CheckpointFormatError(f"cannot read the checkpoint index {self.path}: {exc}") from exc
        if self.file_size < FOOTER_SIZE:
            raise CheckpointFormatError(
                f"{self.path} is {self.file_size} bytes long, shorter than the {FOOTER_SIZE}-byte footer of a "
                f"TensorFlow checkpoint index: it is truncated or not a checkpoint index; re-download it")
        footer = self._read(self.file_size - FOOTER_SIZE, FOOTER_SIZE)
        magic = struct.unpack_from("<Q", footer, 40)[0]
        if magic != MAGIC:
            raise CheckpointFormatError(
                f"{self.path} is not a TensorFlow checkpoint index: it ends with {magic:#018x}, not the table magic "
                f"number {MAGIC:#018x} (a TensorFlow 1 'V1' checkpoint, another file renamed, or a truncated "
                f"download?); re-download it, or pass the checkpoint prefix (the path without .index)")
        self.metaindex, pos = _decode_handle(footer, 0, "footer of the checkpoint index")
        self.index_handle, _ = _decode_handle(footer, pos, "footer of the checkpoint index")
        # the metaindex block lists filter blocks, which bundles never have; it is read only to check it
        self.read_block(self.metaindex, "the metaindex block")
        index = self.read_block(self.index_handle, "the index block")
        self._separators = index.keys
        self._handles: list[BlockHandle] = []
        for separator, value in zip(index.keys, index.values):
            handle, end = _decode_handle(value, 0, "index block")
            if end != len(value):
                raise CheckpointFormatError(f"the index block of {self.path} has an entry ({separator!r}) that is "
                                            f"not a block handle: the index is corrupt")
            self._handles.append(handle)
        self._blocks: dict[int, Block] = {}

    def _read(self, offset: int, size: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise CheckpointFormatError(f"{self.path} ended after {offset + len(data)} bytes while reading "
                                        f"{size} at {offset}: the file is truncated; re-download it")
        return data

    def read_block(self, handle: BlockHandle, what: str) -> Block:
        """The block at ``handle``, its trailer's compression type and checksum checked."""
        what = f"{what} of {self.path}"
        end = handle.offset + handle.size + TRAILER_SIZE
        if end > self.file_size - FOOTER_SIZE:
            raise CheckpointFormatError(f"{what} (bytes {handle.offset}..{end}) lies past the end of the table "
                                        f"({self.file_size - FOOTER_SIZE} bytes before the footer): the index is "
                                        f"truncated or corrupt; re-download it")
        raw = self._read(handle.offset, handle.size + TRAILER_SIZE)
        kind = raw[handle.size]
        stored = struct.unpack_from("<I", raw, handle.size + 1)[0]
        actual = crc32c(memoryview(raw)[:handle.size + 1])
        if unmask(stored) != actual:
            raise CheckpointFormatError(f"{what} fails its checksum (stored {unmask(stored):#010x}, computed "
                                        f"{actual:#010x}): the index is corrupt; re-download it")
        if kind != 0:
            name = COMPRESSION.get(kind, f"unknown compression type {kind}")
            raise CheckpointFormatError(f"{what} is compressed ({name}); TensorFlow never compresses checkpoint "
                                        f"indexes and zoo reads only uncompressed tables: re-save the checkpoint "
                                        f"with TensorFlow's Saver or tf.train.Checkpoint")
        return Block(raw[:handle.size], what)

    def _data_block(self, i: int) -> Block:
        if i not in self._blocks:
            self._blocks[i] = self.read_block(self._handles[i], f"data block {i}")
        return self._blocks[i]

    def __len__(self) -> int:
        """The number of data blocks."""
        return len(self._handles)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) in key order; checks that each block's keys lie between the index's separators."""
        previous: bytes | None = None
        for i, separator in enumerate(self._separators):
            block = self._data_block(i)
            for key, value in zip(block.keys, block.values):
                if previous is not None and key <= previous or key > separator:
                    raise CheckpointFormatError(f"data block {i} of {self.path} holds key {key!r} out of order: "
                                                f"the index is corrupt; re-download it")
                previous = key
                yield key, value
            self._blocks.pop(i, None)  # a full scan keeps no block

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None: the first block whose separator is >= key holds it if any."""
        i = bisect.bisect_left(self._separators, key)
        if i == len(self._separators):
            return None
        return self._data_block(i).get(key)
