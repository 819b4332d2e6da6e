"""Small random Llama-family checkpoints written by transformers at test time (the parity oracle).

``make_llama(folder, model_type, head, seed, **config_overrides)`` saves a transformers model of model_type llama,
mistral, qwen2 or qwen3 with ``save_pretrained`` and returns the folder. Every tensor is re-drawn (seeded) at a
larger scale than transformers' init, norms and biases included (RMSNorm weights around 1), so a tensor that zoo
reads wrongly or not at all changes the outputs visibly. ``make_batch`` gives left-padded input ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

VOCAB = 128
PAD, BOS, EOS = 0, 1, 2

#: hidden 32 over 4 heads of 8, two key/value heads (GQA ratio 2), two layers.
TINY: dict[str, Any] = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                            pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)

CONFIG_CLASSES = {"llama": "LlamaConfig", "mistral": "MistralConfig", "qwen2": "Qwen2Config", "qwen3": "Qwen3Config"}
HEAD_SUFFIXES = {
    "base": "Model",
    "causal-lm": "ForCausalLM",
    "sequence-classification": "ForSequenceClassification",
    "token-classification": "ForTokenClassification",
    "question-answering": "ForQuestionAnswering",
}
PREFIXES = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}


def hf_class(model_type: str, head: str) -> type:
    """transformers' class for one family and head (``Qwen2ForCausalLM``)."""
    import transformers

    return getattr(transformers, PREFIXES[model_type] + HEAD_SUFFIXES[head])


def make_llama(folder: Path, model_type: str = "llama", head: str = "causal-lm", seed: int = 0, scale: float = 0.2,
               max_shard_size: str | None = None, **config_overrides: Any) -> Path:
    """Save a random transformers ``model_type`` model for ``head`` under ``folder``; return ``folder``."""
    import transformers

    torch.manual_seed(seed)
    config = getattr(transformers, CONFIG_CLASSES[model_type])(**{**TINY, **config_overrides})
    model = hf_class(model_type, head)(config)
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.copy_(1 + noise if name.endswith("norm.weight") else noise)
    folder = Path(folder)
    model.save_pretrained(folder, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    return folder


def load_hf(folder: Path, model_type: str = "llama", head: str = "causal-lm", **kwargs: Any):
    """transformers' model from ``folder``, in eval mode (``attn_implementation`` sdpa unless given)."""
    kwargs.setdefault("attn_implementation", "sdpa")
    return hf_class(model_type, head).from_pretrained(folder, **kwargs).eval()


def make_batch(seed: int = 0, batch: int = 3, length: int = 12, vocab: int = VOCAB,
               real: tuple[int, ...] | None = None) -> dict[str, torch.Tensor]:
    """input_ids left-padded with PAD (rows of ``real`` tokens: by default all, three fewer, two) and the mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row, n in enumerate((real or (length, length - 3, 2))[:batch]):
        mask[row, : length - n] = 0
    ids[mask == 0] = PAD
    return {"input_ids": ids, "attention_mask": mask}
