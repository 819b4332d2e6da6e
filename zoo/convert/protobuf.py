"""A minimal protocol-buffer decoder for the few messages a TensorFlow checkpoint index holds.

The wire format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of fields, each a
varint key ``field_number << 3 | wire_type`` followed by a varint (type 0), 8 bytes (1), a varint length and that
many bytes (2) or 4 bytes (5); fields a reader does not know are skipped, which is how protobuf stays compatible.
Only data is read: no descriptors, no reflection, no protobuf package, nothing from the file is executed.

The messages and their field numbers are TensorFlow's, from tensorflow/core/protobuf/tensor_bundle.proto,
tensorflow/core/framework/tensor_shape.proto, tensor_slice.proto, versions.proto and types.proto.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from zoo.errors import CheckpointFormatError

__all__ = ["DTYPES", "BundleEntry", "BundleHeader", "fields", "parse_bundle_entry", "parse_bundle_header",
           "parse_tensor_slice", "read_varint"]

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5

#: TensorFlow's DataType enum (types.proto): code -> name. The numpy-backed ones are mapped to arrays by
#: zoo.convert.tensorbundle; the rest are listed so a skipped variable can say what it was.
DTYPES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 8: "complex64",
    9: "int64", 10: "bool", 11: "qint8", 12: "quint8", 13: "qint32", 14: "bfloat16", 15: "qint16", 16: "quint16",
    17: "uint16", 18: "complex128", 19: "float16", 20: "resource", 21: "variant", 22: "uint32", 23: "uint64",
    24: "float8_e5m2", 25: "float8_e4m3fn", 26: "float8_e4m3fnuz", 27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz",
    29: "int4", 30: "uint4", 31: "int2", 32: "uint2",
}


def read_varint(data: bytes | memoryview, pos: int, what: str = "protobuf message") -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at ``data[pos:]``; at most 10 bytes (64 bits)."""
    result = shift = 0
    end = len(data)
    for i in range(10):
        if pos + i >= end:
            raise CheckpointFormatError(f"a varint in the {what} runs past its end (byte {pos} of {end}): the file "
                                        f"is truncated or not a TensorFlow checkpoint")
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos + i + 1
        shift += 7
    raise CheckpointFormatError(f"a varint in the {what} is longer than 10 bytes (at byte {pos}): the file is "
                                f"corrupt or not a TensorFlow checkpoint")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(data: bytes | memoryview, what: str = "protobuf message") -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message, in order: an int for varint and fixed
    fields (unsigned), the bytes for length-delimited ones. Groups (wire types 3 and 4, deprecated since proto2)
    and unknown wire types are refused: TensorFlow never writes them, so they mean the bytes are not its message."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = read_varint(data, pos, what)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise CheckpointFormatError(f"the {what} has a field numbered 0 (at byte {pos}): not a protobuf "
                                        f"message, the file is corrupt or not a TensorFlow checkpoint")
        if wire == VARINT:
            value, pos = read_varint(data, pos, what)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise CheckpointFormatError(f"a 64-bit field of the {what} runs past its end")
            value, pos = struct.unpack_from("<Q", data, pos)[0], pos + 8
        elif wire == LENGTH_DELIMITED:
            size, pos = read_varint(data, pos, what)
            if pos + size > end:
                raise CheckpointFormatError(f"a field of the {what} is {size} bytes long but only {end - pos} "
                                            f"remain: the file is truncated or not a TensorFlow checkpoint")
            value, pos = bytes(data[pos:pos + size]), pos + size
        elif wire == FIXED32:
            if pos + 4 > end:
                raise CheckpointFormatError(f"a 32-bit field of the {what} runs past its end")
            value, pos = struct.unpack_from("<I", data, pos)[0], pos + 4
        else:
            raise CheckpointFormatError(f"the {what} has field {number} of wire type {wire}, which TensorFlow "
                                        f"never writes: the file is corrupt or not a TensorFlow checkpoint")
        yield number, wire, value


def _expect(wire: int, expected: int, message: str, number: int) -> None:
    if wire != expected:
        raise CheckpointFormatError(f"field {number} of a {message} has wire type {wire}, expected {expected}: the "
                                    f"index is corrupt or not a TensorFlow checkpoint index")


@dataclass(frozen=True)
class BundleHeader:
    """BundleHeaderProto: the value of the index's empty key."""

    num_shards: int = 0
    big_endian: bool = False  # Endianness enum: LITTLE = 0, BIG = 1
    producer: int = 0  # VersionDef (versions.proto): producer = 1, min_consumer = 2, bad_consumers = 3
    min_consumer: int = 0


@dataclass(frozen=True)
class BundleEntry:
    """BundleEntryProto: where one tensor's bytes are and what they are."""

    dtype: int = 0
    shape: tuple[int, ...] = ()
    unknown_rank: bool = False
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int = 0  # masked, as stored; proto3 omits a 0, which is then the value to check against
    slices: tuple[bytes, ...] = field(default=())  # TensorSliceProto each: the variable is partitioned

    @property
    def dtype_name(self) -> str:
        return DTYPES.get(self.dtype % 100, f"unknown dtype {self.dtype}")  # 101..: the *_REF twins


def parse_bundle_header(data: bytes | memoryview) -> BundleHeader:
    num_shards = endianness = producer = min_consumer = 0
    for number, wire, value in fields(data, "bundle header"):
        if number == 1:
            _expect(wire, VARINT, "BundleHeaderProto", number)
            num_shards = _signed64(value)
        elif number == 2:
            _expect(wire, VARINT, "BundleHeaderProto", number)
            endianness = value
        elif number == 3:
            _expect(wire, LENGTH_DELIMITED, "BundleHeaderProto", number)
            for sub, sub_wire, sub_value in fields(value, "bundle header's version"):
                if sub == 1 and sub_wire == VARINT:
                    producer = _signed64(sub_value)
                elif sub == 2 and sub_wire == VARINT:
                    min_consumer = _signed64(sub_value)
    return BundleHeader(num_shards=num_shards, big_endian=endianness == 1, producer=producer,
                        min_consumer=min_consumer)


def _parse_shape(data: bytes) -> tuple[tuple[int, ...], bool]:
    """TensorShapeProto: dim = 2 (repeated Dim: size = 1, name = 2), unknown_rank = 3."""
    dims: list[int] = []
    unknown_rank = False
    for number, wire, value in fields(data, "tensor shape"):
        if number == 2:
            _expect(wire, LENGTH_DELIMITED, "TensorShapeProto", number)
            size = 0
            for sub, sub_wire, sub_value in fields(value, "tensor shape's dimension"):
                if sub == 1:
                    _expect(sub_wire, VARINT, "TensorShapeProto.Dim", sub)
                    size = _signed64(sub_value)
            dims.append(size)
        elif number == 3:
            _expect(wire, VARINT, "TensorShapeProto", number)
            unknown_rank = bool(value)
    return tuple(dims), unknown_rank


def parse_bundle_entry(data: bytes | memoryview) -> BundleEntry:
    """BundleEntryProto: dtype = 1, shape = 2, shard_id = 3, offset = 4, size = 5, crc32c = 6 (fixed32),
    slices = 7 (repeated TensorSliceProto)."""
    values: dict[str, object] = {}
    slices: list[bytes] = []
    for number, wire, value in fields(data, "bundle entry"):
        if number == 1:
            _expect(wire, VARINT, "BundleEntryProto", number)
            values["dtype"] = value
        elif number == 2:
            _expect(wire, LENGTH_DELIMITED, "BundleEntryProto", number)
            values["shape"], values["unknown_rank"] = _parse_shape(value)
        elif number in (3, 4, 5):
            _expect(wire, VARINT, "BundleEntryProto", number)
            values[{3: "shard_id", 4: "offset", 5: "size"}[number]] = _signed64(value)
        elif number == 6:
            _expect(wire, FIXED32, "BundleEntryProto", number)
            values["crc32c"] = value
        elif number == 7:
            _expect(wire, LENGTH_DELIMITED, "BundleEntryProto", number)
            slices.append(value)
    return BundleEntry(slices=tuple(slices), **values)  # type: ignore[arg-type]


def parse_tensor_slice(data: bytes) -> tuple[tuple[int, int], ...]:
    """TensorSliceProto (tensor_slice.proto): extent = 1 (repeated Extent: start = 1, length = 2); an extent
    without a length covers its whole dimension, given here as length -1 (TensorSlice's kFullExtent)."""
    extents = []
    for number, wire, value in fields(data, "tensor slice"):
        if number == 1:
            _expect(wire, LENGTH_DELIMITED, "TensorSliceProto", number)
            start, length = 0, -1
            for sub, sub_wire, sub_value in fields(value, "tensor slice's extent"):
                if sub in (1, 2):
                    _expect(sub_wire, VARINT, "TensorSliceProto.Extent", sub)
                    if sub == 1:
                        start = _signed64(sub_value)
                    else:
                        length = _signed64(sub_value)
            extents.append((start, length))
    return tuple(extents)
