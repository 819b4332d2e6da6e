"""What the generation tests share: one small GPT-2 checkpoint loaded by both libraries, and the comparisons.

Every test calls transformers' ``generate`` and zoo's on the very same files with the very same options, and
holds zoo to transformers: token ids exactly, scores and logits within 1e-5 (relative, and absolute at the
tensor's scale). Sampling is seeded the way each library draws: ``torch.manual_seed(s)`` before
transformers' call (it samples from torch's global generator), ``seed=s`` for zoo's (a generator seeded alike), so
both draw the same numbers through ``torch.multinomial``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.plugins.test_gpt2 import CONFIGS, EOS, PAD, make_batch, make_gpt2
from zoo.plugins.gpt2.modeling import GPT2LMHeadModel

__all__ = ["CONFIGS", "EOS", "PAD", "assert_same", "both", "hf_generate", "make_batch", "zoo_generate"]

ATOL = RTOL = 1e-5
SEED = 123


def both(folder: Path, config_name: str = "tiny-gelu_new", **overrides: Any):
    """transformers' and zoo's GPT-2 LM on one checkpoint (weights drawn large enough to give varied text)."""
    hf = make_gpt2(folder, "causal-lm", scale=0.5, **{**CONFIGS[config_name], **overrides})
    return hf, GPT2LMHeadModel.from_pretrained(folder)


def hf_generate(hf, batch: dict[str, torch.Tensor] | torch.Tensor, seed: int = SEED, **options: Any):
    inputs = batch if isinstance(batch, dict) else {"input_ids": batch}
    torch.manual_seed(seed)
    with torch.no_grad():
        return hf.generate(**inputs, **options)


def zoo_generate(model, batch: dict[str, torch.Tensor] | torch.Tensor, seed: int = SEED, **options: Any):
    inputs = batch if isinstance(batch, dict) else {"input_ids": batch}
    return model.generate(**inputs, seed=seed, **options)


def _close(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Within 1e-5 of the tensor's scale: zoo decodes through its own kernels (GPT-2's native step sums in another
    order), an independent float32 rounding, so a logit near 0 may differ by 1e-5 of the largest ones (these
    random models give logits up to ~15); tests/test_generation.py holds the step itself to forward the same way."""
    finite = expected[torch.isfinite(expected)]
    scale = max(1.0, float(finite.abs().max())) if finite.numel() else 1.0
    torch.testing.assert_close(got, expected, atol=ATOL * scale, rtol=RTOL, msg=lambda m: f"{what}: {m}")


def assert_same(got: Any, expected: Any) -> None:
    """zoo's result equals transformers': ids exactly; every per-step score/logit tensor and the beam scores
    within 1e-5; beam indices exactly."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), type(got)
        assert got.shape == expected.shape and torch.equal(got, expected), f"\n{got}\n!=\n{expected}"
        return
    assert type(got).__name__ == type(expected).__name__, (type(got), type(expected))
    assert torch.equal(got.sequences, expected.sequences), f"\n{got.sequences}\n!=\n{expected.sequences}"
    for name in ("scores", "logits"):
        a, b = getattr(got, name), getattr(expected, name)
        assert (a is None) == (b is None), name
        if b is not None:
            assert len(a) == len(b), (name, len(a), len(b))
            for step, (x, y) in enumerate(zip(a, b)):
                _close(x, y, f"{name}[{step}]")
    for name in ("hidden_states", "attentions"):
        a, b = getattr(got, name), getattr(expected, name)
        assert (a is None) == (b is None), name
        if b is not None:
            assert len(a) == len(b), (name, len(a), len(b))
            for step, (xs, ys) in enumerate(zip(a, b)):
                assert len(xs) == len(ys), (name, step)
                for layer, (x, y) in enumerate(zip(xs, ys)):
                    _close(x, y, f"{name}[{step}][{layer}]")
    if hasattr(expected, "sequences_scores"):
        assert (got.sequences_scores is None) == (expected.sequences_scores is None)
        if expected.sequences_scores is not None:
            _close(got.sequences_scores, expected.sequences_scores, "sequences_scores")
        assert torch.equal(got.beam_indices, expected.beam_indices), f"\n{got.beam_indices}\n!=\n{expected.beam_indices}"
