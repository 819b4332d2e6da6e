"""CRC-32C (Castagnoli), the checksum of TensorFlow checkpoints, and TensorFlow's "mask" of it.

TensorFlow stores ``mask(crc32c(bytes))`` for every tensor of a bundle (``BundleEntryProto.crc32c``) and for every
block of its ``.index`` table (the block trailer), exactly as LevelDB does (tensorflow/core/lib/hash/crc32c.h,
leveldb/util/crc32c.h): the mask rotates right by 15 bits and adds 0xa282ead8, so that a CRC computed over data
that itself holds CRCs does not degenerate.

The work is done by zoo's native kernel (zoo/native/crc32c.c: the SSE4.2 CRC32 instruction, or slicing-by-8
tables) when it is built. Otherwise by the same tables in Python: vectorised over many lanes with numpy (about
200 MB/s, :func:`numpy_extend`), or, without numpy, one byte at a time (about 5 MB/s); a note is logged once.
``ZOO_NATIVE=0`` forces the fallback.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["backend", "crc32c", "extend", "mask", "masked_crc32c", "numpy_extend", "python_extend", "unmask"]

_POLY = 0x82F63B78  # CRC-32C, bit-reflected
_MASK_DELTA = 0xA282EAD8


def _make_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def python_extend(crc: int, data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of ``A || data`` given ``crc`` = CRC-32C of ``A`` (0 for none), one table lookup per byte.

    The fallback where the native kernel is not built, and the reference the tests hold it to."""
    table = _TABLE
    c = ~crc & 0xFFFFFFFF
    for byte in memoryview(data).cast("B"):
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return ~c & 0xFFFFFFFF


_LANE = 1024  # bytes per lane of the vectorised fallback
_CHUNK = 4096 * _LANE  # bytes per round: 4096 lanes, a 4 MiB transposed copy at most


@functools.lru_cache(maxsize=4)
def _shift_tables(length: int) -> Any:
    """Four 256-entry tables of the linear map "run the CRC register over ``length`` zero bytes" (no inversions),
    one per byte of the register: the map applied to ``s`` is the XOR of ``table[k][byte k of s]``."""
    import numpy as np

    table = np.array(_TABLE, dtype=np.uint32)
    basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)  # the register's 32 unit vectors
    for _ in range(length):
        basis = table[basis & 0xFF] ^ (basis >> 8)
    values = np.arange(256)
    tables = np.zeros((4, 256), dtype=np.uint32)
    for k in range(4):
        for bit in range(8):
            tables[k][(values >> bit) & 1 == 1] ^= basis[8 * k + bit]
    return tables


def numpy_extend(crc: int, data: Any) -> int:
    """:func:`python_extend`, vectorised with numpy (~40 times faster): CRC registers are linear over GF(2), so
    4096 lanes of 1 KiB are run side by side from a zero register, one numpy step per byte position, and then
    chained: register = shift(register over 1 KiB of zeros) ^ lane, a table lookup per lane."""
    import numpy as np

    view = memoryview(data).cast("B")
    table = np.array(_TABLE, dtype=np.uint32)
    shift = _shift_tables(_LANE)
    register = ~crc & 0xFFFFFFFF
    whole = len(view) - len(view) % _LANE
    for start in range(0, whole, _CHUNK):
        block = np.frombuffer(view[start:min(start + _CHUNK, whole)], dtype=np.uint8)
        columns = np.ascontiguousarray(block.reshape(-1, _LANE).T)  # (lane position, lane)
        lanes = np.zeros(columns.shape[1], dtype=np.uint32)
        for column in columns:
            lanes = table[(lanes ^ column) & 0xFF] ^ (lanes >> 8)
        t0, t1, t2, t3 = (t.tolist() for t in shift)
        for lane in lanes.tolist():
            register = (t0[register & 0xFF] ^ t1[(register >> 8) & 0xFF] ^ t2[(register >> 16) & 0xFF]
                        ^ t3[register >> 24] ^ lane)
    return python_extend(~register & 0xFFFFFFFF, view[whole:])


@functools.lru_cache(maxsize=1)
def _numpy_available() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _fallback(crc: int, data: Any) -> int:
    if memoryview(data).nbytes >= 4 * _LANE and _numpy_available():
        return numpy_extend(crc, data)
    return python_extend(crc, data)


@functools.lru_cache(maxsize=1)
def _native() -> Any:
    from zoo.native import load_crc32c

    library, why = load_crc32c()
    if library is None:
        logger.warning("checksums of TensorFlow checkpoints are computed without zoo's native kernel, about 20 "
                       "times slower (and ~5 MB/s without numpy), because it is not in use: %s", why)
    return library


def backend() -> str:
    """Which implementation :func:`extend` uses: ``"native (sse4.2)"``, ``"native (tables)"``, ``"numpy"`` or
    ``"python"`` (the last two: for buffers of 4 KiB or more, numpy where it is installed)."""
    library = _native()
    if library is None:
        return "numpy" if _numpy_available() else "python"
    return "native (sse4.2)" if library.zoo_crc32c_hardware() else "native (tables)"


def _pointer(data: Any) -> tuple[Any, int, Any]:
    """(address, length, the object to keep alive) of a contiguous buffer, without copying it."""
    view = memoryview(data)
    if not view.contiguous:
        raise ValueError("crc32c needs a contiguous buffer")
    n = view.nbytes
    if n == 0:
        return None, 0, None
    if isinstance(data, bytes):
        keep = ctypes.c_char_p(data)  # points into the bytes object itself
        return ctypes.cast(keep, ctypes.c_void_p), n, (keep, data)
    if not view.readonly:
        keep = (ctypes.c_char * n).from_buffer(view.cast("B"))
        return ctypes.addressof(keep), n, (keep, view)
    # a read-only buffer that is not bytes (a read-only memmap, a view of bytes): numpy can take its address
    import numpy as np

    array = np.frombuffer(view.cast("B"), dtype=np.uint8)
    return array.ctypes.data, n, array


def extend(crc: int, data: Any) -> int:
    """CRC-32C of ``A || data`` given ``crc`` = CRC-32C of ``A`` (0 for none); ``data`` is any contiguous buffer
    (bytes, bytearray, memoryview, a numpy array)."""
    library = _native()
    if library is None:
        return _fallback(crc, data)
    address, n, keep = _pointer(data)
    if n == 0:
        return crc & 0xFFFFFFFF
    result = library.zoo_crc32c_extend(crc & 0xFFFFFFFF, address, n)
    del keep  # the buffer had to outlive the call
    return result


def crc32c(data: Any) -> int:
    """CRC-32C of ``data`` (RFC 3720's iSCSI checksum: ``crc32c(b"123456789") == 0xE3069283``)."""
    return extend(0, data)


def mask(crc: int) -> int:
    """TensorFlow's and LevelDB's masked form of a CRC, as stored in checkpoints."""
    crc &= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """The CRC that :func:`mask` turned into ``masked``."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def masked_crc32c(data: Any) -> int:
    """``mask(crc32c(data))``: the value a checkpoint stores for ``data``."""
    return mask(crc32c(data))
