"""Configs of the CNN plugin.

ResNetConfig has the fields of transformers' ResNetConfig (configuration_resnet.py), same names and defaults
(ResNet-50). SimpleCNNConfig describes the small CIFAR-10 network of PyTorch's "Training a classifier" tutorial;
it has no transformers counterpart, so its config.json is zoo's own (``model_type: "simple-cnn"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from zoo.config_fields import MAX_CHANNELS, MAX_IMAGE_SIZE, MAX_LAYERS, MAX_WIDTH, Field
from zoo.configuration import Config
from zoo.errors import ConfigError

MAX_STAGES = 64


class ResNetConfig(Config):
    model_type: ClassVar[str] = "resnet"
    layer_types: ClassVar[tuple[str, ...]] = ("basic", "bottleneck")

    num_channels: int = Field(3, ge=1, le=MAX_CHANNELS)
    embedding_size: int = Field(64, ge=1, le=MAX_WIDTH)
    hidden_sizes: list[int] = Field([256, 512, 1024, 2048], ge=1, le=MAX_WIDTH, min_len=1, max_len=MAX_STAGES)
    depths: list[int] = Field([3, 4, 6, 3], ge=1, le=MAX_LAYERS, min_len=1, max_len=MAX_STAGES)
    layer_type: str = Field("bottleneck", choices=layer_types)
    hidden_act: str = "relu"
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False

    def validate(self) -> None:
        super().validate()
        self.hidden_sizes, self.depths = list(self.hidden_sizes), list(self.depths)
        if len(self.hidden_sizes) != len(self.depths):
            raise ConfigError(f"hidden_sizes has {len(self.hidden_sizes)} stages but depths has {len(self.depths)}; "
                              f"give one hidden size per stage")
        if sum(self.depths) > MAX_LAYERS:
            raise ConfigError(f"depths {self.depths} add up to {sum(self.depths)} layers, more than {MAX_LAYERS}; "
                              f"fix depths in config.json")
        if self.layer_type == "bottleneck" and min(self.hidden_sizes) < 4:
            raise ConfigError(f"hidden_sizes {self.hidden_sizes} has a stage narrower than 4, which a bottleneck layer "
                              f"(4x reduction) cannot have; use widths >= 4 or layer_type 'basic'")


class SimpleCNNConfig(Config):
    """conv(k) -> ReLU -> maxpool(2) per entry of ``conv_channels``, flatten, then ReLU linear layers of
    ``hidden_sizes`` and a linear classifier. Defaults are the tutorial's: 3x32x32 input, convs of 6 and 16
    channels (kernel 5), linear 400 -> 120 -> 84 -> 10 classes.
    """

    model_type: ClassVar[str] = "simple-cnn"

    num_channels: int = Field(3, ge=1, le=MAX_CHANNELS)
    image_size: int = Field(32, ge=1, le=MAX_IMAGE_SIZE)
    conv_channels: list[int] = Field([6, 16], ge=1, le=MAX_CHANNELS, min_len=1, max_len=MAX_STAGES)
    kernel_size: int = Field(5, ge=1, le="image_size")
    hidden_sizes: list[int] = Field([120, 84], ge=1, le=MAX_WIDTH, min_len=0, max_len=MAX_STAGES)
    hidden_dropout_prob: float = Field(0.0, ge=0, lt=1)

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("id2label") is None and "num_labels" not in kwargs:
            kwargs["num_labels"] = 10  # CIFAR-10
        super().__init__(**kwargs)

    @property
    def feature_size(self) -> int:
        """Length of the flattened conv features: each stage is a valid conv (size - k + 1) then a 2x2 pool."""
        size = self.image_size
        for _ in self.conv_channels:
            size = (size - self.kernel_size + 1) // 2
        return self.conv_channels[-1] * size * size

    def validate(self) -> None:
        super().validate()
        self.conv_channels, self.hidden_sizes = list(self.conv_channels), list(self.hidden_sizes)
        size = self.image_size
        for _ in self.conv_channels:
            size = (size - self.kernel_size + 1) // 2
            if size < 1:
                raise ConfigError(f"image_size {self.image_size} is too small for {len(self.conv_channels)} conv+pool "
                                  f"stages of kernel {self.kernel_size}; use larger images or fewer stages")
        if self.feature_size > MAX_WIDTH:
            raise ConfigError(f"SimpleCNNConfig flattens {self.feature_size} conv features (conv_channels "
                              f"{self.conv_channels[-1]} x {size} x {size}), more than {MAX_WIDTH}; use smaller "
                              f"images, more stages or fewer channels")
