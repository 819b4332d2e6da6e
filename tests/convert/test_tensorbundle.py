"""zoo.convert.TFCheckpoint (and the sorted-table and protobuf readers under it) against TensorFlow itself.

TensorFlow writes the checkpoints and says what it reads back from them, in a subprocess (conftest.py); zoo reads
the same files here, where TensorFlow cannot be imported, and must agree on every variable, bit for bit. Damaged
files must fail as CheckpointFormatError (and only that), naming the file, and change nothing on disk.
"""

from __future__ import annotations

import logging
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.convert.conftest import load_oracle
from zoo.convert import TFCheckpoint
from zoo.convert.crc32c import crc32c, mask
from zoo.convert.leveldb import MAGIC, Table
from zoo.convert.protobuf import parse_bundle_entry
from zoo.errors import CheckpointFormatError, ModelFileNotFoundError, VariableNotFoundError

NOT_READ = ("string", "resource", "variant")


# --- an SSTable writer, LevelDB's TableBuilder in a few lines: it reproduces TensorFlow's own .index files byte
# --- for byte (test_the_table_writer_reproduces_tensorflow), so tables crafted with it are realistic -----------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class BlockBuilder:
    def __init__(self, restart_interval: int) -> None:
        self.interval, self.buf, self.restarts, self.counter, self.last = restart_interval, bytearray(), [0], 0, b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.counter < self.interval:
            while shared < min(len(key), len(self.last)) and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.counter = 0
        self.buf += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        self.last, self.counter = key, self.counter + 1

    def estimate(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buf) + struct.pack(f"<{len(self.restarts)}I", *self.restarts) + struct.pack(
            "<I", len(self.restarts))


def _separator(start: bytes, limit: bytes) -> bytes:
    n, i = min(len(start), len(limit)), 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _successor(key: bytes) -> bytes:
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


def write_table(items, block_size: int = 262144, restart_interval: int = 16, kind: int = 0) -> bytes:
    """An SSTable of ``items`` (sorted (key, value) bytes pairs) with TensorFlow's options (256 KiB blocks,
    a restart every 16 keys, uncompressed); ``kind`` is the compression byte put in every block trailer."""
    out = bytearray()

    def write_block(contents: bytes) -> tuple[int, int]:
        handle = (len(out), len(contents))
        out.extend(contents + bytes([kind]) + struct.pack("<I", mask(crc32c(contents + bytes([kind])))))
        return handle

    data, index, pending, last = BlockBuilder(restart_interval), BlockBuilder(1), None, b""
    for key, value in items:
        if pending is not None:
            index.add(_separator(last, key), varint(pending[0]) + varint(pending[1]))
            pending = None
        data.add(key, value)
        last = key
        if data.estimate() >= block_size:
            pending = write_block(data.finish())
            data = BlockBuilder(restart_interval)
    if data.buf:
        pending = write_block(data.finish())
    meta = write_block(BlockBuilder(restart_interval).finish())
    if pending is not None:
        index.add(_successor(last), varint(pending[0]) + varint(pending[1]))
    handle = write_block(index.finish())
    footer = (varint(meta[0]) + varint(meta[1]) + varint(handle[0]) + varint(handle[1])).ljust(40, b"\0")
    return bytes(out + footer + struct.pack("<Q", MAGIC))


def header(num_shards: int = 1, endianness: int = 0, min_consumer: int = 0) -> bytes:
    """A BundleHeaderProto: num_shards = 1, endianness = 2, version = 3 {producer = 1, min_consumer = 2}."""
    version = b"\x08\x01" + (b"\x10" + varint(min_consumer) if min_consumer else b"")
    return (b"\x08" + varint(num_shards) + (b"\x10" + varint(endianness) if endianness else b"")
            + b"\x1a" + varint(len(version)) + version)


def entry(dtype: int, shape: tuple[int, ...], offset: int, size: int, crc: int, shard: int = 0) -> bytes:
    """A BundleEntryProto: dtype = 1, shape = 2 {dim = 2 {size = 1}}, shard_id = 3, offset = 4, size = 5,
    crc32c = 6 (fixed32)."""
    dims = b"".join(b"\x12" + varint(len(b"\x08" + varint(d))) + b"\x08" + varint(d) for d in shape)
    return (b"\x08" + varint(dtype) + b"\x12" + varint(len(dims)) + dims + b"\x18" + varint(shard)
            + b"\x20" + varint(offset) + b"\x28" + varint(size) + b"\x35" + struct.pack("<I", crc))


# --- reading what TensorFlow wrote -------------------------------------------------------------------------------


def test_tensorflow_cannot_be_imported_in_these_tests(tf_checkpoints):
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401
    TFCheckpoint(tf_checkpoints / "saver").verify()
    assert not any(name.split(".")[0] in ("tensorflow", "keras") for name in sys.modules)


@pytest.mark.parametrize("name", ["saver", "many", "tf2", "partitioned"])
def test_every_variable_equals_what_tensorflow_reads(tf_checkpoints, name):
    oracle = load_oracle(tf_checkpoints / f"{name}-oracle")
    ckpt = TFCheckpoint(tf_checkpoints / name)
    readable = sorted(n for n, e in oracle.items() if e["dtype"] not in NOT_READ)
    assert ckpt.names() == readable == list(ckpt) and len(ckpt) == len(readable)
    assert sorted(ckpt.skipped) == sorted(n for n, e in oracle.items() if e["dtype"] in NOT_READ)
    for var, expected in oracle.items():
        if expected["dtype"] in NOT_READ:
            assert var not in ckpt
            with pytest.raises(CheckpointFormatError, match="not read"):
                ckpt.get(var)
            continue
        assert var in ckpt
        assert ckpt.dtype(var) == expected["dtype"]
        assert ckpt.shape(var) == tuple(expected["shape"])
        value, tensor = ckpt.get(var), ckpt.get_torch(var)
        assert tuple(tensor.shape) == tuple(expected["shape"]) and tensor.dtype == getattr(torch, expected["dtype"])
        if expected["dtype"] == "bfloat16":  # compared as bits: the oracle keeps them as uint16
            assert np.array_equal(tensor.view(torch.int16).numpy().view(np.uint16), expected["value"])
            widened = (expected["value"].astype(np.uint32) << 16).view(np.float32)
            assert value.dtype == np.float32 and np.array_equal(value, widened)
        else:
            assert value.dtype == expected["value"].dtype and value.shape == expected["value"].shape
            assert np.array_equal(value, expected["value"])
            assert np.array_equal(tensor.numpy(), expected["value"])


def test_the_checkpoints_cover_what_the_reader_must_handle(tf_checkpoints):
    """Shards, dtypes, scalars, empty tensors and multi-block indexes are really there (else the test above
    would prove less than it says)."""
    saver = TFCheckpoint(tf_checkpoints / "saver")
    assert saver.num_shards == 2 and {saver._entries[n].shard_id for n in saver} == {0, 1}
    assert {saver.dtype(n) for n in saver} >= {"float32", "float16", "bfloat16", "float64", "int32", "int64",
                                               "int8", "uint8", "bool"}
    assert () in {saver.shape(n) for n in saver} and any(0 in saver.shape(n) for n in saver)
    assert TFCheckpoint(tf_checkpoints / "tf2").num_shards > 2
    table = Table(tf_checkpoints / "many" / "model.ckpt.index")
    assert len(table) >= 3
    restarts = [len(table._data_block(i).restarts) for i in range(len(table))]
    assert min(restarts) > 1 and sum(restarts) > 100


def test_the_table_writer_reproduces_tensorflow(tf_checkpoints):
    """Re-encoding TensorFlow's index from what zoo read gives TensorFlow's file, byte for byte: every key,
    value, restart point, separator and checksum was read as written."""
    for index in sorted(tf_checkpoints.glob("*/*.index")):
        assert write_table(list(Table(index).items())) == index.read_bytes(), index


def test_table_lookups_binary_search_the_restart_points(tf_checkpoints):
    table = Table(tf_checkpoints / "many" / "model.ckpt.index")
    items = list(table.items())
    for key, value in items[::97] + items[-3:]:
        assert table.get(key) == value
    keys = [k for k, _ in items]
    for missing in (b"\x00", b"zzzz", keys[10] + b"\x00", keys[1000][:-1]):
        if missing not in keys:
            assert table.get(missing) is None


def test_skipped_variables_are_noted_once(tf_checkpoints, caplog):
    caplog.set_level(logging.INFO, logger="zoo.convert.tensorbundle")
    ckpt = TFCheckpoint(tf_checkpoints / "tf2")
    assert list(ckpt.skipped) == ["_CHECKPOINTABLE_OBJECT_GRAPH"]
    notes = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(notes) == 1 and "_CHECKPOINTABLE_OBJECT_GRAPH" in notes[0].getMessage()
    ckpt.names(), ckpt.verify()
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 1


def test_missing_variables_say_what_is_there(tf_checkpoints):
    ckpt = TFCheckpoint(tf_checkpoints / "saver")
    with pytest.raises(VariableNotFoundError, match=r"no variable 'float32/shape_9' .*closest: float32/") as info:
        ckpt.get("float32/shape_9")
    assert isinstance(info.value, KeyError)


def test_variables_stored_in_slices_are_put_back_together(tf_checkpoints):
    """tf.compat.v1 partitioners and TensorFlow 2's MaxShardSizePolicy store a variable as slices (the equality
    with TensorFlow is checked above); here: that the slices really are there, spread over several shards."""
    ckpt = TFCheckpoint(tf_checkpoints / "tf2")
    sliced = [n for n in ckpt if ckpt._entries[n].slices]
    assert sliced
    for name in sliced:
        shards = {part.shard_id for _, part in ckpt._slices(name, ckpt._entries[name])}
        assert ckpt.nbytes(name) == ckpt.get(name).nbytes
    assert len(shards) > 1
    partitioned = TFCheckpoint(tf_checkpoints / "partitioned")
    assert len(partitioned._entries["sliced_3d"].slices) == 3 and partitioned.get("sliced_3d").shape == (3, 7, 2)


# --- where the checkpoint is ---------------------------------------------------------------------------------------


def test_a_checkpoint_is_found_from_its_prefix_folder_index_or_shard(tf_checkpoints):
    folder = tf_checkpoints / "saver"
    prefix = folder / "model.ckpt"
    for given in (folder, prefix, f"{prefix}.index", f"{prefix}.data-00001-of-00002", str(prefix)):
        assert TFCheckpoint(given).prefix == prefix
    assert TFCheckpoint(tf_checkpoints / "tf2").prefix == tf_checkpoints / "tf2" / "ckpt"  # no checkpoint file


def test_a_checkpoint_file_written_elsewhere_still_finds_its_prefix(tf_checkpoints, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(tf_checkpoints / "saver", moved)
    shutil.copy(moved / "model.ckpt.index", moved / "other.ckpt.index")  # two indexes: the file decides
    # TensorFlow wrote the original's absolute path: a copy reads its own files, not the original's
    assert str(tf_checkpoints) in (moved / "checkpoint").read_text()
    assert TFCheckpoint(moved).prefix == moved / "model.ckpt"
    (moved / "checkpoint").write_text('model_checkpoint_path: "/somewhere/else/model.ckpt"\n'
                                      'all_model_checkpoint_paths: "/somewhere/else/model.ckpt"\n')
    assert TFCheckpoint(moved).prefix == moved / "model.ckpt"


def test_no_checkpoint_is_a_clear_error(tf_checkpoints, tmp_path):
    with pytest.raises(ModelFileNotFoundError, match=r"no \*\.index"):
        TFCheckpoint(tmp_path)
    with pytest.raises(ModelFileNotFoundError, match="expected .*nothing.ckpt.index"):
        TFCheckpoint(tmp_path / "nothing.ckpt")
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.ckpt.index", "b.ckpt.index"):
        shutil.copy(tf_checkpoints / "saver" / "model.ckpt.index", two / name)
    with pytest.raises(ModelFileNotFoundError, match="holds 2 TensorFlow checkpoints"):
        TFCheckpoint(two)


# --- damaged and foreign files -------------------------------------------------------------------------------------


@pytest.fixture
def saver_copy(tf_checkpoints, tmp_path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(tf_checkpoints / "saver", folder)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_bad_tensor_checksum_names_the_variable_and_the_file(saver_copy):
    ckpt = TFCheckpoint(saver_copy)
    name = "float32/shape_5"  # (300, 257) float32
    entry = ckpt._entries[name]
    path = ckpt.data_paths[entry.shard_id]
    flip(path, entry.offset + entry.size // 2)
    before = snapshot(saver_copy)
    with pytest.raises(CheckpointFormatError) as info:
        ckpt.get(name)
    message = str(info.value)
    assert repr(name) in message and str(path) in message and "re-download it" in message
    with pytest.raises(CheckpointFormatError, match="fails its checksum"):
        ckpt.get_torch(name)
    with pytest.raises(CheckpointFormatError, match=r"1 variable\(s\) .* failed verification"):
        ckpt.verify()
    ckpt.get("int32/shape_0")  # the others still read
    assert snapshot(saver_copy) == before


def test_a_damaged_string_variable_fails_verification(saver_copy):
    ckpt = TFCheckpoint(saver_copy)
    ckpt.verify()  # the string variables' own checksum layout is understood: they pass untouched
    strings = parse_bundle_entry(Table(ckpt.index_path).get(b"notes/strings"))
    flip(ckpt.data_paths[strings.shard_id], strings.offset + strings.size - 1)
    with pytest.raises(CheckpointFormatError, match="notes/strings"):
        ckpt.verify()


def test_a_truncated_data_shard_is_refused_at_once(saver_copy):
    shard = saver_copy / "model.ckpt.data-00001-of-00002"
    shard.write_bytes(shard.read_bytes()[:-100])
    before = snapshot(saver_copy)
    with pytest.raises(CheckpointFormatError, match=r"data-00001-of-00002 is truncated.*re-download it"):
        TFCheckpoint(saver_copy)
    assert snapshot(saver_copy) == before


def test_a_missing_shard_is_named(saver_copy):
    (saver_copy / "model.ckpt.data-00000-of-00002").unlink()
    with pytest.raises(CheckpointFormatError, match=r"2 data shard\(s\) and 1 of them are missing: "
                                                    r"model.ckpt.data-00000-of-00002"):
        TFCheckpoint(saver_copy)


def test_a_wrong_magic_number_is_not_a_checkpoint(saver_copy):
    flip(saver_copy / "model.ckpt.index", -1)
    with pytest.raises(CheckpointFormatError, match="is not a TensorFlow checkpoint index: it ends with"):
        TFCheckpoint(saver_copy)


def test_a_bad_block_trailer_checksum_is_refused(saver_copy):
    index = saver_copy / "model.ckpt.index"
    flip(index, 30)  # inside the one data block
    with pytest.raises(CheckpointFormatError, match="data block 0 .* fails its checksum"):
        TFCheckpoint(saver_copy)


@pytest.mark.parametrize("content", [b"", b"x" * 47, bytes(range(256)) * 20,
                                     np.random.default_rng(0).bytes(5000)])
def test_a_random_file_named_index_is_refused(tmp_path, content):
    (tmp_path / "model.ckpt.index").write_bytes(content)
    with pytest.raises(CheckpointFormatError, match="model.ckpt.index"):
        TFCheckpoint(tmp_path)


def test_an_index_that_is_not_a_table_is_refused(tmp_path):
    """The right magic number after garbage: the handles point nowhere sensible."""
    garbage = np.random.default_rng(1).bytes(3000)
    (tmp_path / "model.ckpt.index").write_bytes(garbage + varint(10) + varint(20) + varint(5) + varint(2000)
                                                + b"\0" * 32 + struct.pack("<Q", MAGIC))
    with pytest.raises(CheckpointFormatError):
        TFCheckpoint(tmp_path)
    (tmp_path / "model.ckpt.index").write_bytes(write_table([(b"a", b""), (b"b", b"")]))  # empty entries
    with pytest.raises(CheckpointFormatError, match="no bundle header"):
        TFCheckpoint(tmp_path)


def test_every_flipped_byte_of_an_index_is_caught_or_harmless(tf_checkpoints, tmp_path):
    """No damage makes the reader fail with anything but CheckpointFormatError; a flip it does not see must be
    in the footer's padding (the only bytes no checksum covers), and then it reads what TensorFlow wrote."""
    original = (tf_checkpoints / "saver" / "model.ckpt.index").read_bytes()
    for name in ("model.ckpt.data-00000-of-00002", "model.ckpt.data-00001-of-00002"):
        shutil.copy(tf_checkpoints / "saver" / name, tmp_path / name)
    index = tmp_path / "model.ckpt.index"
    expected = TFCheckpoint(tf_checkpoints / "saver").names()
    unnoticed = []
    for position in range(len(original)):
        data = bytearray(original)
        data[position] ^= 0x01
        index.write_bytes(bytes(data))
        try:
            ckpt = TFCheckpoint(tmp_path)
        except CheckpointFormatError:
            continue
        assert ckpt.names() == expected
        unnoticed.append(position)
    footer_padding = range(len(original) - 48, len(original) - 8)
    assert unnoticed and all(p in footer_padding for p in unnoticed)


def test_every_truncation_of_an_index_is_refused(tf_checkpoints, tmp_path):
    original = (tf_checkpoints / "saver" / "model.ckpt.index").read_bytes()
    index = tmp_path / "model.ckpt.index"
    for length in range(0, len(original), 7):
        index.write_bytes(original[:length])
        with pytest.raises(CheckpointFormatError):
            TFCheckpoint(index)


# --- crafted tables: what TensorFlow does not write but a reader must refuse ------------------------------------


def crafted(tmp_path: Path, head: bytes, kind: int = 0) -> Path:
    value = np.arange(6, dtype="<f4").tobytes()
    (tmp_path / "m.ckpt.data-00000-of-00001").write_bytes(value)
    items = [(b"", head), (b"w", entry(1, (2, 3), 0, len(value), mask(crc32c(value))))]
    (tmp_path / "m.ckpt.index").write_bytes(write_table(items, kind=kind))
    return tmp_path / "m.ckpt"


def test_a_crafted_table_reads(tmp_path):
    assert TFCheckpoint(crafted(tmp_path, header())).get("w").tolist() == [[0, 1, 2], [3, 4, 5]]


def test_a_big_endian_bundle_is_refused(tmp_path):
    with pytest.raises(CheckpointFormatError, match="big-endian"):
        TFCheckpoint(crafted(tmp_path, header(endianness=1)))


def test_a_newer_bundle_version_is_refused(tmp_path):
    with pytest.raises(CheckpointFormatError, match="bundle version 2 or newer"):
        TFCheckpoint(crafted(tmp_path, header(min_consumer=2)))


@pytest.mark.parametrize("kind, name", [(1, "snappy"), (7, "unknown compression type 7")])
def test_a_compressed_index_block_is_refused(tmp_path, kind, name):
    with pytest.raises(CheckpointFormatError, match=f"is compressed \\({name}\\)"):
        TFCheckpoint(crafted(tmp_path, header(), kind=kind))


def test_an_entry_whose_size_does_not_match_its_shape_is_refused(tmp_path):
    value = np.arange(6, dtype="<f4").tobytes()
    (tmp_path / "m.ckpt.data-00000-of-00001").write_bytes(value)
    items = [(b"", header()), (b"w", entry(1, (2, 2), 0, len(value), mask(crc32c(value))))]
    (tmp_path / "m.ckpt.index").write_bytes(write_table(items))
    with pytest.raises(CheckpointFormatError, match=r"stored as 24 bytes, but a float32 tensor of shape \(2, 2\)"):
        TFCheckpoint(tmp_path / "m.ckpt").get("w")


def test_an_entry_pointing_past_the_shard_count_is_refused(tmp_path):
    items = [(b"", header()), (b"w", entry(1, (1,), 0, 4, 0, shard=3))]
    (tmp_path / "m.ckpt.index").write_bytes(write_table(items))
    with pytest.raises(CheckpointFormatError, match="points to shard 3"):
        TFCheckpoint(tmp_path / "m.ckpt")


def sliced_checkpoint(tmp_path: Path, slices: list[tuple[tuple[int, int], ...]], drop: int | None = None) -> Path:
    """A (4, 6) float32 variable 'w' stored as the given slices (start, length per dimension; length -1: all)."""
    from zoo.convert.tensorbundle import slice_key

    full = np.arange(24, dtype="<f4").reshape(4, 6)
    data, items, protos = bytearray(), [], b""
    for i, extents in enumerate(slices):
        region = tuple(slice(s, s + n) if n >= 0 else slice(None) for s, n in extents)
        part = np.ascontiguousarray(full[region]).tobytes()
        extent_protos = b"".join(b"\x0a" + varint(len(e)) + e for e in (
            (b"\x08" + varint(s) if s else b"") + (b"\x10" + varint(n) if n >= 0 else b"") for s, n in extents))
        protos += b"\x3a" + varint(len(extent_protos)) + extent_protos
        if i != drop:
            shape = full[region].shape
            items.append((slice_key("w", tuple((0, -1) if n < 0 else (s, n) for s, n in extents)),
                          entry(1, shape, len(data), len(part), mask(crc32c(part)))))
        data += part
    (tmp_path / "m.ckpt.data-00000-of-00001").write_bytes(bytes(data))
    whole = b"\x08\x01\x12" + varint(8) + b"\x12\x02\x08\x04\x12\x02\x08\x06" + protos
    (tmp_path / "m.ckpt.index").write_bytes(write_table(sorted([(b"", header()), (b"w", whole)] + items)))
    return tmp_path / "m.ckpt"


def test_crafted_slices_read_back(tmp_path):
    prefix = sliced_checkpoint(tmp_path, [((0, 1), (0, -1)), ((1, 3), (0, 2)), ((1, 3), (2, 4))])
    assert TFCheckpoint(prefix).get("w").tolist() == np.arange(24, dtype=np.float32).reshape(4, 6).tolist()
    assert TFCheckpoint(prefix).get_torch("w").tolist() == np.arange(24).reshape(4, 6).tolist()


def test_a_missing_slice_is_refused(tmp_path):
    prefix = sliced_checkpoint(tmp_path, [((0, 2), (0, -1)), ((2, 2), (0, -1))], drop=1)
    with pytest.raises(CheckpointFormatError, match="is missing from the index"):
        TFCheckpoint(prefix).get("w")


def test_slices_that_do_not_cover_the_variable_are_refused(tmp_path):
    prefix = sliced_checkpoint(tmp_path, [((0, 2), (0, -1)), ((2, 1), (0, -1))])
    with pytest.raises(CheckpointFormatError, match="cover 18 of its 24 elements"):
        TFCheckpoint(prefix).get("w")
    with pytest.raises(CheckpointFormatError, match="cover 18 of its 24 elements"):
        TFCheckpoint(prefix).verify()


@pytest.mark.parametrize("value, encoded", [(0, "80"), (1, "81"), (-1, "7f"), (63, "bf"), (-64, "40"),
                                            (64, "c040"), (0x424242, "f0424242"), (-0x800, "3800"),
                                            (2**63 - 1, "ffc07fffffffffffffff"), (-2**63, "003f8000000000000000")])
def test_slice_keys_use_tensorflows_ordered_code(value, encoded):
    """The examples of ordered_code.cc's comments and the ends of the int64 range."""
    from zoo.convert.tensorbundle import _ordered_signed

    assert _ordered_signed(value).hex() == encoded
