"""``set_seed``: one call that makes a run repeatable, as transformers' ``set_seed`` (trainer_utils.py) does.

It seeds every generator a zoo run may draw from: Python's ``random``, torch's CPU and CUDA generators, and numpy's
global generator when numpy is installed (it is optional; zoo never needs it). ``deterministic=True`` also asks torch
for deterministic kernels, which is slower and raises where an operation has none, exactly as torch documents.
"""

from __future__ import annotations

import os
import random

from zoo.errors import ZooError

#: The range every seeded generator accepts (numpy's global seed is 32-bit).
_SEED_MAX = 2**32 - 1


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed ``random``, torch (CPU and every CUDA device) and numpy, so sampling and initialisation repeat."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _SEED_MAX:
        raise ZooError(f"set_seed takes an integer from 0 to {_SEED_MAX}, got {seed!r}")
    import torch

    random.seed(seed)
    torch.manual_seed(seed)  # seeds the CUDA generators too, lazily, where CUDA is present
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        np.random.seed(seed)
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic; it is read when the first handle is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
