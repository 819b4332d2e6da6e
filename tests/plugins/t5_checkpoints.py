"""Small random T5-family checkpoints written by transformers at test time (the parity oracle).

``make_t5(folder, model_type, head, seed, untied=False, **config_overrides)`` saves a transformers model of
model_type t5, mt5 or umt5 and returns the folder. Every tensor is re-drawn (seeded) at a visible scale, layer norm
weights around 1, so a tensor zoo reads wrongly or not at all changes the outputs. transformers 5 always ties
``lm_head`` to ``shared`` when it builds a T5; ``untied=True`` writes the layout published untied checkpoints
(Flan-T5, mT5) have instead: a ``lm_head.weight`` of its own and ``"tie_word_embeddings": false``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

VOCAB = 96
PAD, EOS = 0, 1

#: d_model 32 over 4 heads of 8, d_ff 48, two encoder layers, three decoder layers, few buckets so that both the
#: exact and the logarithmic ones are used by a 12-token input.
TINY: dict[str, Any] = dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3,
                            num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=16,
                            pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD, dropout_rate=0.1)
PREFIXES = {"t5": "T5", "mt5": "MT5", "umt5": "UMT5"}
HEAD_SUFFIXES = {
    "base": "Model",
    "seq2seq-lm": "ForConditionalGeneration",
    "text-encoding": "EncoderModel",
    "sequence-classification": "ForSequenceClassification",
    "question-answering": "ForQuestionAnswering",
}


def hf_class(model_type: str, head: str) -> type:
    import transformers

    return getattr(transformers, PREFIXES[model_type] + HEAD_SUFFIXES[head])


def make_t5(folder: Path, model_type: str = "t5", head: str = "seq2seq-lm", seed: int = 0, scale: float = 0.2,
            untied: bool = False, **config_overrides: Any) -> Path:
    """Save a random transformers ``model_type`` model for ``head`` under ``folder``; return ``folder``."""
    import transformers
    from safetensors.torch import load_file, save_file

    torch.manual_seed(seed)
    config = getattr(transformers, PREFIXES[model_type] + "Config")(**{**TINY, **config_overrides})
    model = hf_class(model_type, head)(config)
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.copy_(1 + noise if name.endswith("layer_norm.weight") else noise)
    folder = Path(folder)
    model.save_pretrained(folder)
    if untied:
        weights = load_file(folder / "model.safetensors")
        weights["lm_head.weight"] = torch.randn(weights["shared.weight"].shape, generator=generator) * scale
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
        data = json.loads((folder / "config.json").read_text())
        data["tie_word_embeddings"] = False
        data.pop("scale_decoder_outputs", None)  # a published file has neither: the tie says it
        (folder / "config.json").write_text(json.dumps(data, indent=2))
    return folder


def load_hf(folder: Path, model_type: str = "t5", head: str = "seq2seq-lm", **kwargs: Any):
    """transformers' model from ``folder``, in eval mode (eager attention unless given)."""
    kwargs.setdefault("attn_implementation", "eager")
    return hf_class(model_type, head).from_pretrained(folder, **kwargs).eval()


def make_batch(seed: int = 0, batch: int = 3, length: int = 12, real: tuple[int, ...] | None = None,
               eos: bool = True) -> dict[str, torch.Tensor]:
    """input_ids right-padded with PAD (rows of ``real`` tokens: all, three fewer, four), each ending in EOS."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (batch, length), generator=generator)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for row, n in enumerate((real or (length, length - 3, 4))[:batch]):
        mask[row, :n] = 1
        if eos:
            ids[row, n - 1] = EOS
    ids[mask == 0] = PAD
    return {"input_ids": ids, "attention_mask": mask}
