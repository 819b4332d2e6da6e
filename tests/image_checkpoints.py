"""Small random image checkpoints and generated images for the image tests (transformers is the parity oracle).

``make_resnet(folder, layer_type=...)`` saves a transformers ResNet with fixed-seed random weights, random
BatchNorm statistics (so loading the running_mean/var buffers matters) and a preprocessor_config.json in the layout
microsoft/resnet-50 publishes, and returns the transformers model in eval mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

#: preprocessor_config.json as microsoft/resnet-50 publishes it (an int size, the old feature-extractor key).
RESNET50_PREPROCESSOR = {
    "crop_pct": 0.875,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "ConvNextFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": 224,
}

TINY_RESNET = {
    "basic": dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 2], layer_type="basic", downsample_in_first_stage=True),
    "bottleneck": dict(embedding_size=8, hidden_sizes=[16, 32], depths=[2, 1], layer_type="bottleneck"),
    "bottleneck-v1": dict(embedding_size=8, hidden_sizes=[16, 32, 32], depths=[1, 1, 1], layer_type="bottleneck",
                          downsample_in_bottleneck=True),
}


def make_resnet(folder: Path, layer_type: str = "basic", seed: int = 0, num_labels: int = 7,
                preprocessor: dict[str, Any] | None = None, **overrides: Any):
    """Save a random transformers ResNetForImageClassification (+ preprocessor_config.json); return it (eval)."""
    import transformers

    torch.manual_seed(seed)
    labels = {i: f"class-{i}" for i in range(num_labels)}
    config = transformers.ResNetConfig(**{**TINY_RESNET[layer_type], **overrides}, id2label=labels,
                                       label2id={v: k for k, v in labels.items()})
    model = transformers.ResNetForImageClassification(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_(1.0, 0.3)
                module.bias.normal_(0.0, 0.3)
                module.num_batches_tracked.fill_(seed + 3)
        model.classifier[1].weight.mul_(8.0)  # clear margins between labels
    model.save_pretrained(folder)
    pre = preprocessor if preprocessor is not None else {**RESNET50_PREPROCESSOR, "size": 64}
    (Path(folder) / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    return model


def noise_image(height: int, width: int, seed: int = 0, mode: str = "RGB"):
    """A random-noise PIL image (RGB, RGBA or L)."""
    from PIL import Image

    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (height, width, channels), generator=g, dtype=torch.uint8)
    data = data[..., 0] if channels == 1 else data
    return Image.frombytes(mode, (width, height), bytes(data.flatten().tolist()))


def smooth_image(height: int, width: int, seed: int = 0):
    """A smooth RGB PIL image: gradients and low-frequency waves (resampling filters differ most on noise, this
    checks the ordinary case)."""
    import math

    from PIL import Image

    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    phase = seed * 0.7
    r = 0.5 + 0.5 * torch.sin(2 * math.pi * (xx * 1.5 + phase))
    g = yy
    b = 0.5 + 0.5 * torch.cos(2 * math.pi * (xx + yy + phase))
    data = (torch.stack([r, g, b], -1) * 255).round().to(torch.uint8)
    return Image.frombytes("RGB", (width, height), bytes(data.flatten().tolist()))
