"""The classic small CNN of PyTorch's CIFAR-10 tutorial ("Training a classifier"), as a zoo architecture.

Top to bottom: conv stages (conv -> ReLU -> 2x2 max pool) -> flatten -> ReLU linear layers -> classifier. With the
default config it is the tutorial's ``Net`` exactly, parameter names included (``conv1``, ``conv2``, ``fc1``,
``fc2``, ``fc3``), so a state dict saved by the tutorial loads as ``pytorch_model.bin`` next to a config.json with
``"model_type": "simple-cnn"``. Saved by zoo it is config.json + model.safetensors like every other architecture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.modeling import PreTrainedModel, classification_loss
from zoo.plugins.cnn.config import SimpleCNNConfig
from zoo.plugins.cnn.modeling import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput, check_pixel_values


class SimpleCNNPreTrainedModel(PreTrainedModel):
    config_class = SimpleCNNConfig
    base_model_prefix = ""
    main_input_name = "pixel_values"

    def post_init(self) -> None:
        """Nothing to add: torch's constructors already gave every layer its default init, the tutorial's, so the
        same seed builds the same weights as the tutorial's ``Net``."""
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        """torch's default init, for layers a checkpoint lacks (a new classifier, say)."""
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.reset_parameters()


class SimpleCNNModel(SimpleCNNPreTrainedModel):
    """The feature extractor: conv stages and the hidden linear layers; ``pooler_output`` is the last hidden layer."""

    def __init__(self, config: SimpleCNNConfig) -> None:
        super().__init__(config)
        channels = [config.num_channels, *config.conv_channels]
        for i in range(len(config.conv_channels)):  # conv1, conv2, ...: the tutorial's names
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels[i], channels[i + 1], config.kernel_size))
        self.pool = nn.MaxPool2d(2, 2)
        widths = [config.feature_size, *config.hidden_sizes]
        for i in range(len(config.hidden_sizes)):  # fc1, fc2, ...
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.post_init()

    @property
    def convs(self) -> list[nn.Conv2d]:
        return [getattr(self, f"conv{i + 1}") for i in range(len(self.config.conv_channels))]

    @property
    def hidden_layers(self) -> list[nn.Linear]:
        return [getattr(self, f"fc{i + 1}") for i in range(len(self.config.hidden_sizes))]

    def forward(self, pixel_values: torch.Tensor | None = None, output_hidden_states: bool | None = None, **kwargs) -> BaseModelOutputWithPoolingAndNoAttention:
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        x = check_pixel_values(pixel_values, self.config.num_channels)  # (B, C, S, S)
        size = self.config.image_size
        if tuple(x.shape[-2:]) != (size, size):  # the flattened features fix the input size
            raise ValueError(f"simple-cnn takes {size}x{size} images (config.image_size), got {tuple(x.shape[-2:])}; "
                             f"resize them to {size}x{size} (the image processor's size)")
        hidden_states: tuple[torch.Tensor, ...] = ()
        for conv in self.convs:
            x = self.pool(F.relu(conv(x)))  # (B, C_i, (S_i - k + 1) / 2, ...)
            hidden_states += (x,)
        features = torch.flatten(x, 1)  # (B, feature_size)
        h = features
        for fc in self.hidden_layers:
            h = self.dropout(F.relu(fc(h)))  # (B, hidden_i)
        return BaseModelOutputWithPoolingAndNoAttention(x, h, hidden_states if output_hidden_states else None)


class SimpleCNNForImageClassification(SimpleCNNModel):
    """The tutorial's ``Net``: the feature extractor plus a last linear layer to the labels (``fc3`` by default)."""

    def __init__(self, config: SimpleCNNConfig) -> None:
        super().__init__(config)
        last = config.hidden_sizes[-1] if config.hidden_sizes else config.feature_size
        self.classifier_name = f"fc{len(config.hidden_sizes) + 1}"
        setattr(self, self.classifier_name, nn.Linear(last, config.num_labels))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, **kwargs) -> ImageClassifierOutput:
        out = super().forward(pixel_values, output_hidden_states)
        logits = getattr(self, self.classifier_name)(out.pooler_output)  # (B, num_labels)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return ImageClassifierOutput(loss, logits, out.hidden_states)
