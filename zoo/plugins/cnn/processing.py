"""Image processors of the CNN plugin: the factories its two architectures register.

ResNet checkpoints on the Hub (microsoft/resnet-18/-50, ...) name ``ConvNextImageProcessor`` in their
preprocessor_config.json: below 384 pixels it resizes the shortest edge to ``shortest_edge / crop_pct`` and center
crops ``shortest_edge`` square; at 384 and above it warps to a square (transformers'
models/convnext/image_processing_pil_convnext.py). simple-cnn's default is the tutorial's transform: the
image at ``image_size`` square, scaled to [0, 1] and normalised with mean 0.5 and std 0.5.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from zoo.configuration import read_json
from zoo.image_processing import (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_STANDARD_MEAN,
                                  IMAGENET_STANDARD_STD, PREPROCESSOR_NAME, ImageProcessor, center_crop, image_hw,
                                  pil_resize, shortest_edge_size)
from zoo.errors import ConfigError


class ConvNextImageProcessor(ImageProcessor):
    """transformers' ConvNextImageProcessor: ``crop_pct`` resize-then-crop below 384 pixels, a square warp above."""

    default_to_square: ClassVar[bool] = False
    processor_type: ClassVar[str] = "ConvNextImageProcessor"

    size: dict[str, int] | None = {"shortest_edge": 384}
    resample: int = 3  # bicubic
    crop_pct: float = 224 / 256

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.do_resize and "shortest_edge" not in (self.size or {}):
            raise ConfigError(f"ConvNextImageProcessor needs size {{'shortest_edge': N}}, got {self.size}; fix preprocessor_config.json")

    def resize_image(self, image: Any) -> torch.Tensor:
        edge = self.size["shortest_edge"]  # type: ignore[index]
        if edge >= 384:
            return pil_resize(image, (edge, edge), self.resample)
        height, width = image_hw(image)
        resized = pil_resize(image, shortest_edge_size(height, width, int(edge / self.crop_pct)), self.resample)
        return center_crop(resized, edge, edge)


def resnet_processor(repo: Any = None, config: Any = None, **kwargs: Any) -> ImageProcessor:
    """The repo's preprocessor_config.json; without one, the microsoft/resnet-* settings (224 crop of a 256 resize,
    bicubic, ImageNet mean and std)."""
    if repo is None or not repo.exists(PREPROCESSOR_NAME):
        return ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875, image_mean=IMAGENET_DEFAULT_MEAN,
                                      image_std=IMAGENET_DEFAULT_STD, **kwargs)
    data = read_json(repo.require(PREPROCESSOR_NAME))
    kind = str(data.get("image_processor_type") or data.get("feature_extractor_type") or "")
    cls = ConvNextImageProcessor if kind.startswith("ConvNext") or "crop_pct" in data else ImageProcessor
    return cls.from_dict(data, **kwargs)


def simple_cnn_processor(repo: Any = None, config: Any = None, **kwargs: Any) -> ImageProcessor:
    """The repo's preprocessor_config.json; without one, the tutorial's transform at the config's image size."""
    if repo is not None and repo.exists(PREPROCESSOR_NAME):
        return ImageProcessor.from_json_file(repo.require(PREPROCESSOR_NAME), **kwargs)
    size = getattr(config, "image_size", 32)
    channels = getattr(config, "num_channels", 3)
    mean = IMAGENET_STANDARD_MEAN if channels == 3 else [0.5] * channels
    std = IMAGENET_STANDARD_STD if channels == 3 else [0.5] * channels
    defaults = {"size": {"height": size, "width": size}, "resample": 2, "image_mean": mean, "image_std": std}
    return ImageProcessor(**{**defaults, **kwargs})
