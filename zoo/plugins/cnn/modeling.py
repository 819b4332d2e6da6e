"""What the CNN plugin's models share: their output dataclasses and the input check.

The two architectures are one file each, top to bottom: :mod:`zoo.plugins.cnn.resnet` and
:mod:`zoo.plugins.cnn.simple_cnn`. Output fields are transformers' (modeling_outputs.py: BaseModelOutputWithPooling-
AndNoAttention, ImageClassifierOutputWithNoAttention), so code written against either library reads them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo.modeling import ModelOutput


@dataclass
class BaseModelOutputWithPoolingAndNoAttention(ModelOutput):
    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class ImageClassifierOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


def check_pixel_values(pixel_values: torch.Tensor | None, num_channels: int) -> torch.Tensor:
    """The (B, C, H, W) input, or an error that says what shape was expected."""
    if pixel_values is None:
        raise ValueError("pixel_values is required: a (batch, channels, height, width) float tensor from the image processor")
    if pixel_values.ndim != 4 or pixel_values.shape[1] != num_channels:
        raise ValueError(f"pixel_values must be (batch, {num_channels}, height, width), got {tuple(pixel_values.shape)}; "
                         f"the config says num_channels={num_channels}")
    return pixel_values
