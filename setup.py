"""The compiled parts of zoo, both optional: the native decoding kernel (zoo/native/decode.c) and the CRC-32C
checksum of TensorFlow checkpoints (zoo/native/crc32c.c).

Everything else is declared in pyproject.toml. ``optional=True``: where no C compiler (or no OpenMP) is found, zoo
installs without them: it decodes through PyTorch alone (zoo.native.status() says which) and checks checkpoints
in pure Python.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "zoo.native._decode",
    sources=["zoo/native/decode.c"],
    extra_compile_args=["-O3", "-fopenmp", "-std=gnu11"],
    extra_link_args=["-fopenmp"],
    libraries=["m"],
    optional=True,
), Extension(
    # CRC-32C of TensorFlow checkpoints (zoo.convert); without it a pure-Python loop checks them, slowly
    "zoo.native._crc32c",
    sources=["zoo/native/crc32c.c"],
    extra_compile_args=["-O3", "-std=gnu11"],
    optional=True,
)])
