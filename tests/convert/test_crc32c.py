"""zoo.convert.crc32c: the native kernel (both of its paths) and the pure-Python fallback compute CRC-32C, and
TensorFlow's mask of it, exactly.

The references: the check values of RFC 3720 (iSCSI, appendix B.4) and the CRC catalogue's "123456789", the
table-driven Python loop (held to those values itself), and, in test_tensorbundle.py, the CRCs TensorFlow stored
in real checkpoints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from zoo.convert import crc32c as crc
from zoo.native import load_crc32c

needs_kernel = pytest.mark.skipif(load_crc32c()[0] is None, reason=f"no CRC-32C kernel: {load_crc32c()[1]}")

CHECK_VALUES = [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"", 0),
]


@pytest.mark.parametrize("data, expected", CHECK_VALUES)
def test_the_check_values(data, expected):
    assert crc.python_extend(0, data) == expected
    assert crc.crc32c(data) == expected


def test_the_kernel_is_built_wherever_a_c_compiler_is():
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler on this machine: checksums run in pure Python")
    if os.environ.get("ZOO_NATIVE", "1") == "0":
        pytest.skip("ZOO_NATIVE=0 is set")
    assert load_crc32c()[0] is not None, load_crc32c()[1]
    assert crc.backend().startswith("native")


@pytest.fixture(params=["auto", "tables"])
def kernel_path(request):
    """Each path of the kernel in turn: the automatic choice (SSE4.2 where the processor has it) and the
    portable slicing-by-8 tables."""
    library = load_crc32c()[0]
    if library is None:
        pytest.skip(f"no CRC-32C kernel: {load_crc32c()[1]}")
    library.zoo_crc32c_force(0 if request.param == "tables" else -1)
    yield request.param
    library.zoo_crc32c_force(-1)


def test_the_kernel_equals_the_python_loop(kernel_path):
    if kernel_path == "tables":
        assert crc.backend() == "native (tables)"
    rng = np.random.default_rng(0)
    data = rng.bytes(4096 + 64)
    for length in list(range(0, 80)) + [255, 256, 1000, 4095, 4096]:
        for offset in (0, 1, 3, 7):  # every alignment the kernel's head loop handles
            view = memoryview(data)[offset:offset + length]
            assert crc.crc32c(view) == crc.python_extend(0, view), (length, offset)
    for expected_data, expected in CHECK_VALUES:
        assert crc.crc32c(expected_data) == expected


def test_a_large_buffer_and_a_running_crc(kernel_path):
    data = np.random.default_rng(1).bytes(3 << 20)
    whole = crc.crc32c(data)
    assert crc.extend(crc.extend(crc.crc32c(data[:12345]), data[12345:2_000_001]), data[2_000_001:]) == whole
    assert crc.python_extend(crc.python_extend(0, data[:100_000]), data[100_000:200_000]) == crc.crc32c(
        data[:200_000])


def test_every_kind_of_buffer_is_read_in_place():
    data = bytes(range(256)) * 40
    expected = crc.python_extend(0, data)
    readonly = np.frombuffer(data, dtype=np.uint8)
    assert not readonly.flags.writeable
    for buffer in (data, bytearray(data), memoryview(data), memoryview(bytearray(data)), readonly,
                   np.frombuffer(bytearray(data), dtype=np.float32)):
        assert crc.crc32c(buffer) == expected, type(buffer)
    assert crc.crc32c(memoryview(data)[10:]) == crc.python_extend(0, data[10:])
    with pytest.raises(ValueError, match="contiguous"):
        crc.crc32c(memoryview(np.arange(100, dtype=np.uint8))[::2])


def test_the_mask_is_tensorflows():
    """crc32c::Mask: rotate right by 15 bits, add 0xa282ead8 (tensorflow/core/lib/hash/crc32c.h)."""
    assert crc.mask(0) == 0xA282EAD8
    assert crc.mask(0xE3069283) == (((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    for value in np.random.default_rng(2).integers(0, 2**32, size=1000, dtype=np.uint64).tolist() + [0xFFFFFFFF]:
        assert crc.unmask(crc.mask(value)) == value
    assert crc.masked_crc32c(b"123456789") == crc.mask(0xE3069283)


def test_the_vectorised_fallback_equals_the_python_loop():
    rng = np.random.default_rng(3)
    for length in (0, 1, 1023, 1024, 1025, 4096, 4097, 70_000, (4 << 20) + 1024 * 3 + 5):
        data = rng.bytes(length)
        for start in (0, 0xE3069283):
            assert crc.numpy_extend(start, data) == crc.python_extend(start, data), length


def test_zoo_native_0_falls_back_and_says_so():
    code = ("import logging; logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
            "from zoo.convert import crc32c\n"
            "data = bytes(range(256)) * 5000\n"
            "print(crc32c.backend(), hex(crc32c.crc32c(b'123456789')), crc32c.crc32c(data))\n")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ZOO_NATIVE": "0"},
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["numpy", "0xe3069283", str(crc.python_extend(0, bytes(range(256)) * 5000))]
    assert result.stderr.count("without zoo's native kernel") == 1 and "ZOO_NATIVE=0" in result.stderr


def test_importing_the_readers_loads_neither_torch_nor_numpy():
    code = ("import sys, zoo.convert, zoo.convert.tensorbundle, zoo.convert.h5, zoo.convert.crc32c\n"
            "from zoo.convert import TFCheckpoint, H5Weights\n"
            "zoo.convert.crc32c.crc32c(b'x')\n"
            "print(sorted({'torch', 'numpy', 'h5py', 'tensorflow'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
