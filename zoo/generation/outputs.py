"""What ``generate(..., return_dict_in_generate=True)`` returns (transformers' GenerateDecoderOnlyOutput and
GenerateBeamDecoderOnlyOutput, generation/utils.py): the same fields in the same order, so ``out.sequences``,
``out["scores"]`` and ``out[0]`` read the same in both libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from zoo.outputs import ModelOutput

__all__ = ["GenerateBeamDecoderOnlyOutput", "GenerateDecoderOnlyOutput", "GenerateOutput"]


@dataclass
class GenerateDecoderOnlyOutput(ModelOutput):
    """Greedy decoding and sampling.

    ``sequences`` (B * num_return_sequences, L): prompt + new tokens. ``scores``: one (B*, V) tensor per new token,
    the processed scores the token was chosen from (``output_scores``); ``logits``: the raw ones
    (``output_logits``). ``attentions`` / ``hidden_states``: per step, the model's per-layer tuple
    (``output_attentions`` / ``output_hidden_states``; the first step covers the whole prompt). ``cache``: the
    key/value cache as it ended.
    """

    sequences: torch.Tensor
    scores: tuple[torch.Tensor, ...] | None = None
    logits: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[tuple[torch.Tensor, ...], ...] | None = None
    hidden_states: tuple[tuple[torch.Tensor, ...], ...] | None = None
    cache: Any = None


@dataclass
class GenerateBeamDecoderOnlyOutput(ModelOutput):
    """Beam search and beam sampling.

    ``sequences`` (B * num_return_sequences, L): the best finished beams, best first, shorter ones filled with the
    pad id. ``sequences_scores`` (B*,): their length-penalised log-probabilities (``output_scores``). ``scores``:
    per step, the processed log-probabilities of every running beam (B * num_beams, V). ``beam_indices``
    (B*, new tokens): for each returned token, the flat index (``batch * num_beams + beam``) of the beam it was
    chosen on, -1 past the end. The rest as :class:`GenerateDecoderOnlyOutput`.
    """

    sequences: torch.Tensor
    sequences_scores: torch.Tensor | None = None
    scores: tuple[torch.Tensor, ...] | None = None
    logits: tuple[torch.Tensor, ...] | None = None
    beam_indices: torch.Tensor | None = None
    attentions: tuple[tuple[torch.Tensor, ...], ...] | None = None
    hidden_states: tuple[tuple[torch.Tensor, ...], ...] | None = None
    cache: Any = None


GenerateOutput = GenerateDecoderOnlyOutput | GenerateBeamDecoderOnlyOutput
