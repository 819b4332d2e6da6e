"""Image processing: image files, PIL images, arrays and tensors -> a normalised ``pixel_values`` batch.

The steps, their order and their arithmetic follow transformers' PIL/NumPy image processors (the ``PilBackend`` of
image_processing_backends.py and image_transforms.py), so pixel values agree with theirs to float rounding:

1. to RGB (alpha composited onto white) and channels first;
2. resize with Pillow (shortest edge, shortest+longest edge, max height/width or a fixed size; the resample filter
   from the config); float images in [0, 1] go through uint8 for Pillow, exactly as there;
3. center crop, zero-padding an image smaller than the crop;
4. rescale (``x * rescale_factor`` computed in float64, stored as float32);
5. normalise with ``image_mean`` / ``image_std`` in float32.

Settings are read from and written to ``preprocessor_config.json`` with transformers' keys, so a folder works with
both libraries. Architecture-specific variants (ConvNeXt's ``crop_pct`` resize used by ResNet checkpoints) live in
their plugin's processing.py and override :meth:`ImageProcessor.resize_image`. Pillow is the one image dependency
(``pip install 'zoo-hub[vision]'``); numpy is not needed (arrays are accepted when the caller has them).
"""

from __future__ import annotations

import copy
import ctypes
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from zoo.configuration import read_json, split_hub_kwargs, write_text_atomic
from zoo.errors import ConfigError, ImageError, MissingDependencyError, ModelFileNotFoundError

logger = logging.getLogger(__name__)

PREPROCESSOR_NAME = "preprocessor_config.json"
IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406]
IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225]
IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5]
IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5]
#: Pillow's resampling filters by their config numbers (PIL.Image.Resampling).
RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
_SIZE_KEYS = ({"height", "width"}, {"shortest_edge"}, {"shortest_edge", "longest_edge"}, {"longest_edge"},
              {"max_height", "max_width"})


def require_pil() -> Any:
    """The ``PIL.Image`` module, or an error that names the extra to install."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError("image processing needs Pillow, which is not installed; install the vision extra: "
                                     "pip install 'zoo-hub[vision]'") from None
    return Image


def is_pil_image(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(obj, Image.Image)


def is_array(obj: Any) -> bool:
    """A numpy array (checked by type name, so numpy is never imported here)."""
    return type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray"


def is_image_like(obj: Any) -> bool:
    """One image (as opposed to a batch): a path, a PIL image, or a 2-D/3-D array or tensor."""
    if isinstance(obj, (str, os.PathLike)) or is_pil_image(obj):
        return True
    return (is_array(obj) or isinstance(obj, torch.Tensor)) and obj.ndim in (2, 3)


def load_image(source: str | os.PathLike[str] | Any) -> Any:
    """Open an image file upright (EXIF orientation applied), as transformers' ``load_image`` does; PIL images pass.

    The mode is kept (the processor converts to RGB); a file that Pillow cannot read raises :class:`ImageError`
    naming it.
    """
    Image = require_pil()
    if isinstance(source, Image.Image):
        return source
    path = Path(os.fspath(source))
    if not path.is_file():
        hint = "; zoo reads local files: download the image first" if str(source).startswith(("http://", "https://")) else ""
        raise ImageError(f"image file {str(source)!r} does not exist{hint}")
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image file Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP, ...)") from None
    except OSError as exc:
        raise ImageError(f"{path} could not be read as an image ({exc}); it may be truncated or corrupt") from None
    return image


# --- conversions (channels-first torch tensors, the dtype an array would have) -------------------------------------------


def _pil_to_tensor(image: Any) -> torch.Tensor:
    """(C, H, W) uint8 of an L/RGB/RGBA image, byte for byte what ``np.array(image)`` holds."""
    w, h = image.size
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    channels = len(image.getbands())
    return data.view(h, w, channels).permute(2, 0, 1).contiguous()  # (C, H, W)


def _tensor_to_pil(chw: torch.Tensor) -> Any:
    """A (C, H, W) uint8 tensor with 1, 3 or 4 channels -> PIL image (L, RGB or RGBA)."""
    Image = require_pil()
    c, h, w = chw.shape
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(c)
    if mode is None:
        raise ImageError(f"an image with {c} channels cannot be resized with Pillow; pass 1 (gray), 3 (RGB) or 4 (RGBA) channels")
    hwc = chw.permute(1, 2, 0).contiguous()
    # ctypes reads the tensor's memory directly: no numpy, and far faster than bytes(storage)
    return Image.frombytes(mode, (w, h), ctypes.string_at(hwc.data_ptr(), hwc.numel()))


def _infer_channels_first(shape: tuple[int, ...]) -> bool:
    """transformers' infer_channel_dimension_format with num_channels (1, 3, 4): first wins when both fit."""
    if shape[0] in (1, 3, 4):
        return True
    if shape[-1] in (1, 3, 4):
        return False
    raise ImageError(f"cannot tell the channel dimension of an image of shape {tuple(shape)}; pass (H, W), (H, W, C) "
                     f"or (C, H, W) with 1, 3 or 4 channels")


def _to_chw(image: Any) -> torch.Tensor:
    """An array or tensor image -> (C, H, W) tensor, dtype kept."""
    tensor = torch.tensor(image) if is_array(image) else image.detach().cpu()
    if tensor.ndim == 2:
        return tensor.unsqueeze(0)
    if tensor.ndim != 3:
        raise ImageError(f"an image must have 2 or 3 dimensions, got shape {tuple(tensor.shape)}")
    return tensor if _infer_channels_first(tuple(tensor.shape)) else tensor.permute(2, 0, 1)


def convert_to_rgb(image: Any) -> Any:
    """RGB with any transparency composited onto white (transformers' ``convert_to_rgb``); PIL or (C, H, W) tensor."""
    if is_pil_image(image):
        Image = require_pil()
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
        return image if image.mode == "RGB" else image.convert("RGB")
    channels = image.shape[0]
    if channels == 1:
        return image.repeat(3, 1, 1)
    if channels == 4:
        if image.is_floating_point():
            if image.min() < 0.0 or image.max() > 1.0:
                raise ImageError(f"an RGBA float image must lie in [0, 1] to be composited, got [{float(image.min())}, {float(image.max())}]")
            alpha = image[3:4]
            return alpha * image[:3] + (1 - alpha) * 1.0
        alpha = image[3:4].double() / 255
        composite = alpha * image[:3].double() + (1 - alpha) * 255
        return composite.round().to(image.dtype)
    return image


# --- size arithmetic (transformers' image_transforms / image_utils) ---------------------------------------------------------


def size_dict(size: Any, default_to_square: bool = True, max_size: int | None = None, name: str = "size") -> dict[str, int] | None:
    """An int, (height, width) or dict -> transformers' size dict (``{"height", "width"}``, ``{"shortest_edge"}``, ...)."""
    if size is None and max_size is None:
        return None
    if isinstance(size, Mapping):
        out = {str(k): int(v) for k, v in size.items() if v is not None}
    elif isinstance(size, int) and not isinstance(size, bool):
        out = {"height": size, "width": size} if default_to_square else {"shortest_edge": size}
        if max_size is not None and not default_to_square:
            out["longest_edge"] = max_size
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        out = {"height": int(size[0]), "width": int(size[1])}
    elif size is None and not default_to_square:
        out = {"longest_edge": int(max_size)}  # type: ignore[arg-type]
    else:
        raise ConfigError(f"{name} {size!r} is not an int, a (height, width) pair or a dict like {{'shortest_edge': 224}}")
    if set(out) not in _SIZE_KEYS:
        raise ConfigError(f"{name} {size!r} has keys {sorted(out)}; use one of: height+width, shortest_edge, "
                          f"shortest_edge+longest_edge, longest_edge, max_height+max_width")
    return out


def shortest_edge_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Scale so the shorter edge is ``size`` (the longer one truncated), as torchvision's Resize(int) does."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def aspect_ratio_size(height: int, width: int, size: int, max_size: int | None = None) -> tuple[int, int]:
    """Shorter edge ``size`` unless the longer would pass ``max_size`` (transformers' get_size_with_aspect_ratio)."""
    raw_size = None
    if max_size is not None:
        lo, hi = float(min(height, width)), float(max(height, width))
        if hi / lo * size > max_size:
            raw_size = max_size * lo / hi
            size = int(round(raw_size))
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    if width < height:
        return int((raw_size if raw_size is not None else size) * height / width), size
    return size, int((raw_size if raw_size is not None else size) * width / height)


# --- outputs --------------------------------------------------------------------------------------------------------------


class BatchFeature(dict):
    """``{"pixel_values": (B, C, H, W)}`` with attribute access and ``.to(device/dtype)``, like transformers' BatchFeature."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, *args: Any, **kwargs: Any) -> BatchFeature:
        return BatchFeature({k: v.to(*args, **kwargs) if isinstance(v, torch.Tensor) else v for k, v in self.items()})


# --- the processor --------------------------------------------------------------------------------------------------------


class ImageProcessor:
    """Resize, crop, rescale and normalise images as a ``preprocessor_config.json`` says.

    Field names and defaults are transformers' (ViT-style: a 224x224 resize, rescale by 1/255, normalise to
    [-1, 1]); keys it does not know are kept and written back. ``do_convert_rgb=None`` converts gray and RGBA
    images to RGB unless ``image_mean`` has a single entry (a grayscale model).
    """

    #: How an int ``size`` reads: a square (True) or the shortest edge (False).
    default_to_square: ClassVar[bool] = True
    #: Written as ``image_processor_type`` when the file read named none. transformers' ViT processor runs exactly
    #: these steps from the keys written, so the file loads in transformers too.
    processor_type: ClassVar[str] = "ViTImageProcessor"
    model_input_names: ClassVar[tuple[str, ...]] = ("pixel_values",)

    do_resize: bool = True
    size: dict[str, int] | None = {"height": 224, "width": 224}
    resample: int = 2  # bilinear
    do_center_crop: bool = False
    crop_size: dict[str, int] | None = None
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: float | list[float] | None = IMAGENET_STANDARD_MEAN
    image_std: float | list[float] | None = IMAGENET_STANDARD_STD
    do_convert_rgb: bool | None = None

    def __init__(self, **kwargs: Any) -> None:
        fields = self.fields()
        max_size = kwargs.pop("max_size", None)  # the older name of size["longest_edge"]
        for key, default in fields.items():
            value = kwargs.pop(key, None)
            setattr(self, key, copy.deepcopy(default) if value is None else value)
        self.size = size_dict(self.size, self.default_to_square, max_size)
        self.crop_size = size_dict(self.crop_size, True, name="crop_size")
        if isinstance(self.image_mean, tuple):
            self.image_mean = list(self.image_mean)
        if isinstance(self.image_std, tuple):
            self.image_std = list(self.image_std)
        self.resample = int(self.resample) if self.resample is not None else 2
        if self.resample not in RESAMPLE_NAMES:
            raise ConfigError(f"resample {self.resample!r} is not a Pillow filter number ({RESAMPLE_NAMES})")
        self.image_processor_type: str = kwargs.pop("image_processor_type", None) or self.processor_type
        self.extra: dict[str, Any] = kwargs  # keys kept as they were read (feature_extractor_type, ...)
        if self.do_resize and not self.size:
            raise ConfigError("do_resize is set but size is missing; give size, e.g. {'height': 224, 'width': 224}")
        if self.do_center_crop and not self.crop_size:
            raise ConfigError("do_center_crop is set but crop_size is missing; give crop_size, e.g. {'height': 224, 'width': 224}")

    @classmethod
    def fields(cls) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for key, annotation in vars(klass).get("__annotations__", {}).items():
                if "ClassVar" not in str(annotation) and not key.startswith("_"):
                    out[key] = vars(klass).get(key, out.get(key))
        return out

    # --- files -------------------------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> ImageProcessor:
        return cls(**{**data, **overrides})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str], **overrides: Any) -> ImageProcessor:
        return cls.from_dict(read_json(path), **overrides)

    @classmethod
    def from_pretrained(cls, identifier: Any, **kwargs: Any) -> ImageProcessor:
        """Read ``preprocessor_config.json`` of a folder or Hub repo (hub options go to the hub client)."""
        from zoo.hub import repo_files

        repo = repo_files(identifier, **split_hub_kwargs(kwargs))
        return cls.from_json_file(repo.require(PREPROCESSOR_NAME), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = {key: copy.deepcopy(getattr(self, key)) for key in self.fields()}
        out.update(copy.deepcopy(self.extra))
        out["image_processor_type"] = self.image_processor_type
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(folder / PREPROCESSOR_NAME, self.to_json_string())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageProcessor) and type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    # --- steps ---------------------------------------------------------------------------------------------------------

    def wants_rgb(self) -> bool:
        if self.do_convert_rgb is not None:
            return bool(self.do_convert_rgb)
        return not (isinstance(self.image_mean, list) and len(self.image_mean) == 1)

    def prepare(self, image: Any) -> Any:
        """One input -> a PIL image (kept as is until the resize) or a (C, H, W) tensor, RGB if wanted."""
        if isinstance(image, (str, os.PathLike)):
            image = load_image(image)
        if is_pil_image(image):
            if self.wants_rgb():
                return convert_to_rgb(image)
            if image.mode not in ("L", "RGB", "RGBA"):
                return image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            return image
        if not (is_array(image) or isinstance(image, torch.Tensor)):
            raise ImageError(f"cannot read an image from a {type(image).__name__}; pass a file path, a PIL image, "
                             f"a numpy array or a torch tensor")
        chw = _to_chw(image)
        if chw.dtype == torch.bool:
            chw = chw.to(torch.uint8)
        return convert_to_rgb(chw) if self.wants_rgb() else chw

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) the resize step produces for an image of this size."""
        size = self.size or {}
        if "shortest_edge" in size and "longest_edge" in size:
            return aspect_ratio_size(height, width, size["shortest_edge"], size["longest_edge"])
        if "shortest_edge" in size:
            return shortest_edge_size(height, width, size["shortest_edge"])
        if "max_height" in size:
            scale = min(size["max_height"] / height, size["max_width"] / width)
            return int(height * scale), int(width * scale)
        if "height" in size:
            return size["height"], size["width"]
        raise ConfigError(f"size {size} cannot be used to resize; give height+width or shortest_edge")

    def resize_image(self, image: Any) -> torch.Tensor:
        """The resize step; architectures override it (ConvNeXt's crop_pct)."""
        height, width = image_hw(image)
        return pil_resize(image, self.output_size(height, width), self.resample)

    def process(self, image: Any) -> torch.Tensor:
        """One image -> (C, H, W) float32 pixel values."""
        x = self.prepare(image)
        if self.do_resize:
            x = self.resize_image(x)
        elif is_pil_image(x):
            x = _pil_to_tensor(x)
        if self.do_center_crop:
            x = center_crop(x, self.crop_size["height"], self.crop_size["width"])  # type: ignore[index]
        if self.do_rescale:
            x = rescale(x, self.rescale_factor)
        if self.do_normalize:
            x = normalize(x, self.image_mean, self.image_std)  # type: ignore[arg-type]
        return x if x.dtype == torch.float32 else x.float()

    def __call__(self, images: Any, return_tensors: str | None = "pt", **overrides: Any) -> BatchFeature:
        """Process one image or a batch (list, or a 4-D array/tensor) into ``{"pixel_values": (B, C, H, W)}``.

        ``return_tensors=None`` gives a list of (C, H, W) tensors (for images that end up of different sizes).
        Keyword arguments override fields for this call (``size=...``, ``do_center_crop=False``, ...).
        """
        if overrides:
            return type(self).from_dict({**self.to_dict(), **overrides})(images, return_tensors=return_tensors)
        items = [images] if is_image_like(images) else list(images) if isinstance(images, Iterable) else [images]
        if not items:
            raise ImageError("no images were given; pass an image or a non-empty list of images")
        pixels = [self.process(item) for item in items]
        if return_tensors is None:
            return BatchFeature(pixel_values=pixels)
        if return_tensors not in ("pt", "torch"):
            raise ValueError(f"return_tensors={return_tensors!r} is not supported; zoo returns torch tensors ('pt') or None (a list)")
        shapes = {tuple(p.shape) for p in pixels}
        if len(shapes) > 1:
            raise ImageError(f"the images came out in different sizes {sorted(shapes)} and cannot be stacked; crop them "
                             f"to one size (do_center_crop with crop_size, or a height+width size) or pass return_tensors=None")
        return BatchFeature(pixel_values=torch.stack(pixels))  # (B, C, H, W)


# --- the steps as functions (transformers' arithmetic) ---------------------------------------------------------------------


def image_hw(image: Any) -> tuple[int, int]:
    if is_pil_image(image):
        return image.size[1], image.size[0]
    return int(image.shape[-2]), int(image.shape[-1])


def pil_resize(image: Any, size: tuple[int, int], resample: int) -> torch.Tensor:
    """Resize with Pillow to (height, width) -> (C, H, W) tensor.

    A float tensor goes through uint8 as in transformers' ``resize``: integral values are cast, values in [0, 1] are
    scaled by 255 (float64, truncated to uint8) and scaled back by 1/255 afterwards; anything else is an error.
    """
    rescaled = False
    if not is_pil_image(image):
        if image.dtype != torch.uint8:
            values = image.double()
            if torch.allclose(values, values.to(torch.int64).double()):
                if values.min() < 0 or values.max() > 255:
                    raise ImageError(f"an integer-valued image must lie in [0, 255] to be resized, got [{float(values.min())}, {float(values.max())}]")
            elif values.min() >= 0 and values.max() <= 1:
                rescaled = True
                image = (values * 255).float()
            else:
                raise ImageError(f"a float image must lie in [0, 1] (or hold integers in [0, 255]) to be resized, "
                                 f"got [{float(values.min())}, {float(values.max())}]")
            image = image.to(torch.uint8)
        image = _tensor_to_pil(image)
    height, width = size
    out = _pil_to_tensor(image.resize((width, height), resample=resample))
    return rescale(out, 1 / 255) if rescaled else out


def center_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop (C, H, W) to (height, width) around the center; a smaller image is zero-padded first."""
    orig_h, orig_w = image.shape[-2:]
    top, left = (orig_h - height) // 2, (orig_w - width) // 2
    bottom, right = top + height, left + width
    if top >= 0 and bottom <= orig_h and left >= 0 and right <= orig_w:
        return image[..., top:bottom, left:right]
    new_h, new_w = max(height, orig_h), max(width, orig_w)
    padded = image.new_zeros((*image.shape[:-2], new_h, new_w))
    top_pad, left_pad = math.ceil((new_h - orig_h) / 2), math.ceil((new_w - orig_w) / 2)
    padded[..., top_pad:top_pad + orig_h, left_pad:left_pad + orig_w] = image
    top, bottom, left, right = top + top_pad, bottom + top_pad, left + left_pad, right + left_pad
    return padded[..., max(0, top):min(new_h, bottom), max(0, left):min(new_w, right)]


def rescale(image: torch.Tensor, factor: float) -> torch.Tensor:
    """``image * factor`` computed in float64 and stored as float32 (transformers' ``rescale``)."""
    return (image.double() * factor).float()


def normalize(image: torch.Tensor, mean: float | list[float], std: float | list[float]) -> torch.Tensor:
    """``(image - mean) / std`` per channel, in the image's float dtype (float32 for integer images)."""
    if not image.is_floating_point():
        image = image.float()
    channels = image.shape[0]
    means = [mean] * channels if isinstance(mean, (int, float)) else list(mean)
    stds = [std] * channels if isinstance(std, (int, float)) else list(std)
    if len(means) != channels or len(stds) != channels:
        raise ImageError(f"the image has {channels} channels but image_mean/image_std have {len(means)}/{len(stds)} "
                         f"entries; convert the image (do_convert_rgb) or fix preprocessor_config.json")
    m = torch.tensor(means, dtype=image.dtype).view(-1, 1, 1)
    s = torch.tensor(stds, dtype=image.dtype).view(-1, 1, 1)
    return (image - m) / s


def from_files(repo: Any, config: Any = None, **kwargs: Any) -> ImageProcessor:
    """The generic image-processor factory: the repo's preprocessor_config.json read by :class:`ImageProcessor`."""
    if repo is None or not repo.exists(PREPROCESSOR_NAME):
        where = getattr(repo, "identifier", "the model")
        raise ModelFileNotFoundError(f"{where} has no {PREPROCESSOR_NAME}; save one with ImageProcessor.save_pretrained "
                                     f"or pass an image processor")
    data = read_json(repo.require(PREPROCESSOR_NAME))
    kind = data.get("image_processor_type") or data.get("feature_extractor_type")
    if kind and kind.removesuffix("Pil").removesuffix("Fast") not in ("ViTImageProcessor", "ViTFeatureExtractor"):
        logger.info("%s names %s; zoo processes it with the generic ImageProcessor (same steps, same defaults where the "
                    "file sets them)", PREPROCESSOR_NAME, kind)
    return ImageProcessor.from_dict(data, **kwargs)

