"""The one compiled part of zoo: the native decoding kernel (zoo/native/decode.c), optional.

Everything else is declared in pyproject.toml. ``optional=True``: where no C compiler (or no OpenMP) is found, zoo
installs without the kernel and decodes through PyTorch alone (zoo.native.status() says which).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "zoo.native._decode",
    sources=["zoo/native/decode.c"],
    extra_compile_args=["-O3", "-fopenmp", "-std=gnu11"],
    extra_link_args=["-fopenmp"],
    libraries=["m"],
    optional=True,
)])
