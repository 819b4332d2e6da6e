"""ResNet (He et al. 2015, arXiv:1512.03385; v1.5 strides), top to bottom: conv layer -> stem -> shortcut -> basic
and bottleneck layers -> stage -> encoder -> model -> classification head.

Module and parameter names are those of the checkpoints published as microsoft/resnet-18/-50 (transformers'
modeling_resnet.py), so they load as a lookup: ``resnet.embedder.embedder.convolution.weight``,
``resnet.encoder.stages.0.layers.0.shortcut.normalization.running_mean``, ``classifier.1.weight``. BatchNorm's
running statistics are persistent buffers and load with the weights; in eval mode (what from_pretrained returns)
they normalise, in train mode the batch does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zoo.activations import get_activation
from zoo.modeling import PreTrainedModel, classification_loss
from zoo.plugins.cnn.config import ResNetConfig
from zoo.plugins.cnn.modeling import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput, check_pixel_values

# --- building blocks -----------------------------------------------------------------------------------------------------


class ResNetConvLayer(nn.Module):
    """conv (same padding, no bias) -> BatchNorm -> activation (None: no activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, activation: str | None = "relu") -> None:
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.normalization = nn.BatchNorm2d(out_channels)
        self.activation = get_activation(activation) if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.convolution(x)))  # (B, out, H/stride, W/stride)


class ResNetEmbeddings(nn.Module):
    """The stem: one 7x7 stride-2 conv layer, then a 3x3 stride-2 max pool (H, W -> H/4, W/4)."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.embedder = ResNetConvLayer(config.num_channels, config.embedding_size, kernel_size=7, stride=2, activation=config.hidden_act)
        self.pooler = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.pooler(self.embedder(pixel_values))  # (B, E, H/4, W/4)


class ResNetShortCut(nn.Module):
    """1x1 conv + BatchNorm projecting the residual to the layer's width (and stride) when they differ."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        self.normalization = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalization(self.convolution(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if in_channels != out_channels or stride != 1:
        return ResNetShortCut(in_channels, out_channels, stride=stride)
    return nn.Identity()


class ResNetBasicLayer(nn.Module):
    """Two 3x3 conv layers plus the shortcut (ResNet-18/34)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu") -> None:
        super().__init__()
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.layer = nn.Sequential(
            ResNetConvLayer(in_channels, out_channels, stride=stride),
            ResNetConvLayer(out_channels, out_channels, activation=None),
        )
        self.activation = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x) + self.shortcut(x))  # (B, out, H/stride, W/stride)


class ResNetBottleNeckLayer(nn.Module):
    """1x1 reduce (by 4) -> 3x3 -> 1x1 expand, plus the shortcut (ResNet-50 and deeper).

    The stride sits on the 3x3 conv (v1.5) unless ``downsample_in_bottleneck`` puts it on the first 1x1 (v1).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu",
                 reduction: int = 4, downsample_in_bottleneck: bool = False) -> None:
        super().__init__()
        reduced = out_channels // reduction
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.layer = nn.Sequential(
            ResNetConvLayer(in_channels, reduced, kernel_size=1, stride=stride if downsample_in_bottleneck else 1),
            ResNetConvLayer(reduced, reduced, stride=1 if downsample_in_bottleneck else stride),
            ResNetConvLayer(reduced, out_channels, kernel_size=1, activation=None),
        )
        self.activation = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x) + self.shortcut(x))  # (B, out, H/stride, W/stride)


class ResNetStage(nn.Module):
    """``depth`` layers of one width; only the first may change width or stride."""

    def __init__(self, config: ResNetConfig, in_channels: int, out_channels: int, stride: int = 2, depth: int = 2) -> None:
        super().__init__()
        act = config.hidden_act
        if config.layer_type == "bottleneck":
            first: nn.Module = ResNetBottleNeckLayer(in_channels, out_channels, stride, act, downsample_in_bottleneck=config.downsample_in_bottleneck)
            rest = [ResNetBottleNeckLayer(out_channels, out_channels, activation=act) for _ in range(depth - 1)]
        else:
            first = ResNetBasicLayer(in_channels, out_channels, stride, act)
            rest = [ResNetBasicLayer(out_channels, out_channels, activation=act) for _ in range(depth - 1)]
        self.layers = nn.Sequential(first, *rest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ResNetEncoder(nn.Module):
    """The stages; each after the first halves H and W (the first too when ``downsample_in_first_stage``)."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        widths = [config.embedding_size, *config.hidden_sizes]
        strides = [2 if config.downsample_in_first_stage else 1] + [2] * (len(config.depths) - 1)
        self.stages = nn.ModuleList(
            ResNetStage(config, widths[i], widths[i + 1], stride=strides[i], depth=depth) for i, depth in enumerate(config.depths)
        )

    def forward(self, x: torch.Tensor, output_hidden_states: bool = False) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        hidden_states: tuple[torch.Tensor, ...] = ()
        for stage in self.stages:
            if output_hidden_states:
                hidden_states += (x,)
            x = stage(x)  # (B, C_i, H_i, W_i)
        if output_hidden_states:
            hidden_states += (x,)
        return x, hidden_states if output_hidden_states else None


# --- model ---------------------------------------------------------------------------------------------------------------


class ResNetPreTrainedModel(PreTrainedModel):
    config_class = ResNetConfig
    base_model_prefix = "resnet"
    main_input_name = "pixel_values"
    # a checkpoint saved before torch tracked batches has no counter; its default (0) is right
    ignore_missing = (r"num_batches_tracked$",)

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' ResNet init: Kaiming-normal convs (fan_out), torch's default Linear init, unit BatchNorm."""
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight.shape[1]
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.reset_running_stats()


class ResNetModel(ResNetPreTrainedModel):
    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)
        self.embedder = ResNetEmbeddings(config)
        self.encoder = ResNetEncoder(config)
        self.pooler = nn.AdaptiveAvgPool2d((1, 1))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor | None = None, output_hidden_states: bool | None = None, **kwargs) -> BaseModelOutputWithPoolingAndNoAttention:
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        x = self.embedder(check_pixel_values(pixel_values, self.config.num_channels))  # (B, E, H/4, W/4)
        x, hidden_states = self.encoder(x, output_hidden_states)  # (B, C, h, w)
        return BaseModelOutputWithPoolingAndNoAttention(x, self.pooler(x), hidden_states)  # pooled: (B, C, 1, 1)


# --- heads ---------------------------------------------------------------------------------------------------------------


class ResNetForImageClassification(ResNetPreTrainedModel):
    """Pooled features -> flatten -> linear; ``loss`` when ``labels`` are given (by config.problem_type)."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)
        self.resnet = ResNetModel(config)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(config.hidden_sizes[-1], config.num_labels))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, **kwargs) -> ImageClassifierOutput:
        out = self.resnet(pixel_values, output_hidden_states, return_dict=True)
        logits = self.classifier(out.pooler_output)  # (B, num_labels)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return ImageClassifierOutput(loss, logits, out.hidden_states)
