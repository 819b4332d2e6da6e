"""The compiled parts of zoo, all optional: the native decoding kernels (zoo/native/decode.c, decode_llama.c,
decode_t5.c), the fused elementwise ops of the Llama-style forward pass (zoo/native/ops.c) and the CRC-32C checksum
of TensorFlow checkpoints (zoo/native/crc32c.c).

Everything else is declared in pyproject.toml. ``optional=True``: where no C compiler (or no OpenMP) is found, zoo
installs without them: it decodes through PyTorch alone (zoo.native.status() says which) and checks checkpoints
in pure Python.
"""

from setuptools import Extension, setup

# -fno-trapping-math: no code here reads the floating-point exception flags, and without it gcc if-converts no
# float select (exp's clamp) and vectorizes no floorf, so the activation loops ran one value at a time
KERNEL_FLAGS = ["-O3", "-fopenmp", "-std=gnu11", "-fno-trapping-math"]


def kernel(name: str, source: str, *flags: str) -> Extension:
    """An OpenMP kernel over common.h, built where a compiler is found (else zoo runs on PyTorch alone)."""
    return Extension(f"zoo.native.{name}", sources=[f"zoo/native/{source}"],
                     extra_compile_args=[*KERNEL_FLAGS, *flags], extra_link_args=["-fopenmp"], libraries=["m"],
                     depends=["zoo/native/common.h"], optional=True)


setup(ext_modules=[
    kernel("_decode", "decode.c"),  # the decoding step of GPT-2-style decoders
    # the decoding step of Llama-style decoders (RMSNorm, rotary, grouped-query attention), float32 and bfloat16
    kernel("_decode_llama", "decode_llama.c"),
    # the decoding step of T5-style encoder-decoders' decoders (relative position bias, cross-attention), float32
    kernel("_decode_t5", "decode_t5.c"),
    # RMSNorm, act(gate) * up and rotary positions of the Llama-style forward pass (the prefill), one pass each;
    # no contraction into FMAs, so float32 products and sums round as torch's separate ops round
    kernel("_ops", "ops.c", "-ffp-contract=off"),
    # CRC-32C of TensorFlow checkpoints (zoo.convert); without it a pure-Python loop checks them, slowly
    Extension("zoo.native._crc32c", sources=["zoo/native/crc32c.c"], extra_compile_args=["-O3", "-std=gnu11"],
              optional=True),
])
