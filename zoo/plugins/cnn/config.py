"""Configs of the CNN plugin.

ResNetConfig has the fields of transformers' ResNetConfig (configuration_resnet.py), same names and defaults
(ResNet-50). SimpleCNNConfig describes the small CIFAR-10 network of PyTorch's "Training a classifier" tutorial;
it has no transformers counterpart, so its config.json is zoo's own (``model_type: "simple-cnn"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from zoo.configuration import Config
from zoo.errors import ConfigError


def _positive_ints(name: str, values: Any, allow_empty: bool = False) -> None:
    if not isinstance(values, (list, tuple)) or (not values and not allow_empty) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ConfigError(f"{name} must be a list of positive ints, got {values!r}; fix config.json")


class ResNetConfig(Config):
    model_type: ClassVar[str] = "resnet"
    layer_types: ClassVar[tuple[str, ...]] = ("basic", "bottleneck")

    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: list[int] = [256, 512, 1024, 2048]
    depths: list[int] = [3, 4, 6, 3]
    layer_type: str = "bottleneck"
    hidden_act: str = "relu"
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False

    def validate(self) -> None:
        super().validate()
        self.hidden_sizes, self.depths = list(self.hidden_sizes), list(self.depths)
        _positive_ints("hidden_sizes", self.hidden_sizes)
        _positive_ints("depths", self.depths)
        if len(self.hidden_sizes) != len(self.depths):
            raise ConfigError(f"hidden_sizes has {len(self.hidden_sizes)} stages but depths has {len(self.depths)}; "
                              f"give one hidden size per stage")
        if self.layer_type not in self.layer_types:
            raise ConfigError(f"layer_type {self.layer_type!r} is not one of {', '.join(self.layer_types)}; fix config.json")


class SimpleCNNConfig(Config):
    """conv(k) -> ReLU -> maxpool(2) per entry of ``conv_channels``, flatten, then ReLU linear layers of
    ``hidden_sizes`` and a linear classifier. Defaults are the tutorial's: 3x32x32 input, convs of 6 and 16
    channels (kernel 5), linear 400 -> 120 -> 84 -> 10 classes.
    """

    model_type: ClassVar[str] = "simple-cnn"

    num_channels: int = 3
    image_size: int = 32
    conv_channels: list[int] = [6, 16]
    kernel_size: int = 5
    hidden_sizes: list[int] = [120, 84]
    hidden_dropout_prob: float = 0.0

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
        _positive_ints("conv_channels", self.conv_channels)
        _positive_ints("hidden_sizes", self.hidden_sizes, allow_empty=True)
        if self.kernel_size < 1 or self.num_channels < 1:
            raise ConfigError(f"kernel_size and num_channels must be positive, got {self.kernel_size} and {self.num_channels}")
        size = self.image_size
        for _ in self.conv_channels:
            size = (size - self.kernel_size + 1) // 2
            if size < 1:
                raise ConfigError(f"image_size {self.image_size} is too small for {len(self.conv_channels)} conv+pool "
                                  f"stages of kernel {self.kernel_size}; use larger images or fewer stages")
        if not 0.0 <= self.hidden_dropout_prob < 1.0:
            raise ConfigError(f"hidden_dropout_prob must be in [0, 1), got {self.hidden_dropout_prob}")
