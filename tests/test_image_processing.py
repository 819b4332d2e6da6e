"""zoo.image_processing against transformers' PIL/NumPy image processors on the same images and settings."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.image_checkpoints import RESNET50_PREPROCESSOR, noise_image, smooth_image
from zoo.errors import ConfigError, ImageError, MissingDependencyError
from zoo.image_processing import (PREPROCESSOR_NAME, BatchFeature, ImageProcessor, center_crop, from_files,
                                  load_image, size_dict)
from zoo.plugins.cnn.processing import ConvNextImageProcessor, resnet_processor, simple_cnn_processor

ATOL = 1e-5
SIZES = [(48, 64), (64, 48), (31, 97), (200, 150), (16, 16), (7, 300)]


def hf_convnext(**kwargs):
    from transformers.models.convnext.image_processing_pil_convnext import ConvNextImageProcessorPil

    return ConvNextImageProcessorPil(**kwargs)


def hf_vit(**kwargs):
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    return ViTImageProcessorPil(**kwargs)


def hf_clip(**kwargs):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(**kwargs)


def hf_pixels(processor, images, **kwargs) -> torch.Tensor:
    return processor(images, return_tensors="pt", **kwargs)["pixel_values"]


def assert_close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs.float(), atol=ATOL, rtol=0)


def images(seed: int = 0):
    for i, (h, w) in enumerate(SIZES):
        yield noise_image(h, w, seed=seed + i)
        yield smooth_image(h, w, seed=seed + i)


# --- parity ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shortest_edge", [32, 64, 224, 384, 400])
def test_resnet_preprocessor_matches_transformers_convnext(shortest_edge):
    """microsoft/resnet-50's file: crop_pct resize + center crop below 384, a square warp at 384 and above."""
    config = {**RESNET50_PREPROCESSOR, "size": shortest_edge}
    ours = ConvNextImageProcessor.from_dict(config)
    theirs = hf_convnext(**config)
    batch = list(images())
    assert_close(ours(batch)["pixel_values"], hf_pixels(theirs, batch))


@pytest.mark.parametrize("resample", [0, 1, 2, 3, 4, 5])
def test_every_resample_filter_matches(resample):
    config = {**RESNET50_PREPROCESSOR, "size": 40, "resample": resample}
    batch = [noise_image(50, 70, seed=resample), smooth_image(90, 33, seed=resample)]
    assert_close(ConvNextImageProcessor.from_dict(config)(batch).pixel_values, hf_pixels(hf_convnext(**config), batch))


def test_fixed_size_resize_matches_vit():
    settings = dict(size={"height": 40, "width": 56}, image_mean=[0.1, 0.2, 0.3], image_std=[0.9, 0.8, 0.7])
    batch = list(images(seed=3))
    assert_close(ImageProcessor(**settings)(batch).pixel_values, hf_pixels(hf_vit(**settings), batch))


def test_shortest_edge_with_center_crop_matches_clip():
    settings = dict(size={"shortest_edge": 48}, crop_size={"height": 40, "width": 44}, do_center_crop=True,
                    resample=3, image_mean=[0.48, 0.45, 0.40], image_std=[0.26, 0.26, 0.27], do_convert_rgb=True)
    batch = list(images(seed=5))
    assert_close(ImageProcessor(**settings)(batch).pixel_values, hf_pixels(hf_clip(**settings), batch))


def test_shortest_and_longest_edge_match():
    settings = dict(size={"shortest_edge": 40, "longest_edge": 60}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    for image in [noise_image(20, 100), noise_image(100, 20, seed=1), noise_image(50, 60, seed=2)]:
        assert_close(ImageProcessor(**settings)(image).pixel_values, hf_pixels(hf_vit(**settings), image))


def test_crop_larger_than_image_zero_pads_like_transformers():
    settings = dict(do_resize=False, do_center_crop=True, crop_size={"height": 40, "width": 30},
                    image_mean=[0.5] * 3, image_std=[0.5] * 3)
    for h, w in [(20, 50), (45, 10), (11, 13)]:
        image = noise_image(h, w, seed=h)
        assert_close(ImageProcessor(**settings)(image).pixel_values, hf_pixels(hf_clip(**settings, do_convert_rgb=False), image))


def test_without_rescale_or_normalize():
    settings = dict(size={"height": 20, "width": 20}, do_rescale=False, do_normalize=False)
    image = noise_image(30, 40)
    ours = ImageProcessor(**settings)(image).pixel_values
    assert_close(ours, hf_pixels(hf_vit(**settings), image))
    assert ours.max() > 1  # 0..255 values, as float32


# --- input kinds -------------------------------------------------------------------------------------------------------


@pytest.fixture
def resnet_pair():
    config = {**RESNET50_PREPROCESSOR, "size": 48}
    return ConvNextImageProcessor.from_dict(config), hf_convnext(**config)


def test_paths_pil_arrays_and_tensors_give_the_same_pixels(resnet_pair, tmp_path):
    ours, theirs = resnet_pair
    image = noise_image(70, 50, seed=11)
    path = tmp_path / "image.png"
    image.save(path)
    array = np.asarray(image)  # (H, W, C) uint8
    expected = hf_pixels(theirs, image)
    for given in [image, str(path), path, array, np.ascontiguousarray(array.transpose(2, 0, 1)),
                  torch.from_numpy(array.copy()), torch.from_numpy(array.transpose(2, 0, 1).copy())]:
        assert_close(ours(given).pixel_values, expected)


def test_float_arrays_in_unit_range_match(resnet_pair):
    """Floats in [0, 1] go through uint8 for Pillow and are rescaled again, exactly as transformers does."""
    ours, theirs = resnet_pair
    for given in [np.asarray(smooth_image(60, 45)).astype(np.float32) / 255, np.random.default_rng(0).random((3, 40, 52))]:
        assert_close(ours(given).pixel_values, hf_pixels(theirs, given))
        assert_close(ours(torch.from_numpy(given)).pixel_values, hf_pixels(theirs, torch.from_numpy(given)))


def test_integer_valued_floats_are_cast_not_scaled(resnet_pair):
    ours, theirs = resnet_pair
    given = np.asarray(noise_image(40, 40)).astype(np.float64)
    assert_close(ours(given).pixel_values, hf_pixels(theirs, given))


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_gray_and_rgba_images_become_rgb_like_transformers_convert_to_rgb(resnet_pair, mode):
    ours, theirs = resnet_pair
    image = noise_image(52, 41, seed=7, mode=mode)
    array = np.asarray(image)
    expected = hf_pixels(theirs, image, do_convert_rgb=True)
    assert ours(image).pixel_values.shape == (1, 3, 48, 48)
    assert_close(ours(image).pixel_values, expected)
    # transformers takes a gray array as (H, W, 1); zoo also takes it as (H, W)
    theirs_array = array[..., None] if array.ndim == 2 else array
    assert_close(ours(array).pixel_values, hf_pixels(theirs, theirs_array, do_convert_rgb=True))
    assert_close(ours(theirs_array).pixel_values, hf_pixels(theirs, theirs_array, do_convert_rgb=True))


def test_palette_images_are_converted(resnet_pair):
    ours, theirs = resnet_pair
    image = noise_image(30, 30, seed=2).convert("P")
    assert_close(ours(image).pixel_values, hf_pixels(theirs, image, do_convert_rgb=True))


def test_batches_lists_and_4d_tensors(resnet_pair):
    ours, theirs = resnet_pair
    batch = [noise_image(40, 60, seed=i) for i in range(3)]
    expected = hf_pixels(theirs, batch)
    assert_close(ours(batch).pixel_values, expected)
    stacked = torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1) for im in batch])  # (B, C, H, W)
    assert_close(ours(stacked).pixel_values, expected)
    assert_close(ours(tuple(batch)).pixel_values, expected)


def test_grayscale_model_keeps_one_channel():
    processor = ImageProcessor(size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5])
    out = processor(noise_image(10, 12, mode="L")).pixel_values
    assert out.shape == (1, 1, 8, 8)


def test_different_sizes_stack_only_when_asked_for_a_list():
    processor = ImageProcessor(size={"shortest_edge": 16})
    batch = [noise_image(20, 40), noise_image(40, 20, seed=1)]
    with pytest.raises(ImageError, match="different sizes"):
        processor(batch)
    pixels = processor(batch, return_tensors=None).pixel_values
    assert [tuple(p.shape) for p in pixels] == [(3, 16, 32), (3, 32, 16)]


def test_call_time_overrides():
    processor = ImageProcessor(size={"height": 10, "width": 10})
    assert processor(noise_image(20, 20), size={"height": 6, "width": 7}).pixel_values.shape == (1, 3, 6, 7)
    assert processor.size == {"height": 10, "width": 10}


def test_batch_feature_moves_to_dtype():
    batch = ImageProcessor(size={"height": 4, "width": 4})(noise_image(8, 8))
    assert isinstance(batch, BatchFeature) and batch.to(torch.float64).pixel_values.dtype == torch.float64


# --- files and settings ----------------------------------------------------------------------------------------------


def test_preprocessor_config_round_trips_and_transformers_reads_ours(tmp_path):
    from transformers import AutoImageProcessor as HFAutoImageProcessor

    ours = ConvNextImageProcessor.from_dict({**RESNET50_PREPROCESSOR, "size": 56})
    ours.save_pretrained(tmp_path)
    data = json.loads((tmp_path / PREPROCESSOR_NAME).read_text())
    assert data["image_processor_type"] == "ConvNextImageProcessor" and data["size"] == {"shortest_edge": 56}
    assert data["feature_extractor_type"] == "ConvNextFeatureExtractor"  # unknown keys are kept
    assert ConvNextImageProcessor.from_pretrained(tmp_path) == ours
    theirs = HFAutoImageProcessor.from_pretrained(tmp_path)
    image = smooth_image(90, 70)
    assert_close(ours(image).pixel_values, hf_pixels(theirs, image))


def test_a_generic_processor_file_loads_in_transformers(tmp_path):
    from transformers import AutoImageProcessor as HFAutoImageProcessor

    ours = simple_cnn_processor(None, None)
    ours.save_pretrained(tmp_path)
    theirs = HFAutoImageProcessor.from_pretrained(tmp_path)
    batch = [noise_image(40, 50), smooth_image(32, 32)]
    assert_close(ours(batch).pixel_values, hf_pixels(theirs, batch))
    assert ImageProcessor.from_pretrained(tmp_path) == ours


def test_size_dict_reads_every_spelling():
    assert size_dict(224) == {"height": 224, "width": 224}
    assert size_dict(224, default_to_square=False) == {"shortest_edge": 224}
    assert size_dict(224, default_to_square=False, max_size=300) == {"shortest_edge": 224, "longest_edge": 300}
    assert size_dict([30, 40]) == {"height": 30, "width": 40}
    assert size_dict({"shortest_edge": 8}) == {"shortest_edge": 8}
    with pytest.raises(ConfigError, match="keys"):
        size_dict({"heigth": 3, "width": 4})
    with pytest.raises(ConfigError):
        ImageProcessor(resample=9)
    with pytest.raises(ConfigError, match="crop_size"):
        ImageProcessor(do_center_crop=True)


def test_max_height_width_size():
    processor = ImageProcessor(size={"max_height": 50, "max_width": 50})
    assert processor.output_size(100, 200) == (25, 50)
    assert processor.output_size(10, 20) == (25, 50)


def test_architecture_factories(tmp_path):
    config = {**RESNET50_PREPROCESSOR}
    (tmp_path / PREPROCESSOR_NAME).write_text(json.dumps(config))
    from zoo.hub import repo_files

    repo = repo_files(tmp_path)
    assert isinstance(resnet_processor(repo), ConvNextImageProcessor)
    default = resnet_processor(None)  # no file: microsoft/resnet-*'s settings
    assert default.size == {"shortest_edge": 224} and default.crop_pct == 0.875 and default.resample == 3
    assert type(from_files(repo)) is ImageProcessor
    tiny = simple_cnn_processor(None, None)
    assert tiny.size == {"height": 32, "width": 32} and tiny.image_mean == [0.5, 0.5, 0.5]


# --- errors ------------------------------------------------------------------------------------------------------------


def test_not_an_image_file_names_the_file(tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    with pytest.raises(ImageError, match="notes.png"):
        load_image(bogus)
    with pytest.raises(ImageError, match="does not exist"):
        ImageProcessor()(str(tmp_path / "missing.jpg"))
    with pytest.raises(ImageError, match="download"):
        load_image("https://example.com/cat.png")


def test_unreadable_shapes_and_types():
    processor = ImageProcessor(size={"height": 4, "width": 4})
    with pytest.raises(ImageError, match="channel dimension"):
        processor(torch.zeros(5, 6, 7, dtype=torch.uint8))
    with pytest.raises(ImageError, match="cannot read an image"):
        processor([42])
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        processor(torch.full((3, 5, 5), 3.5))
    with pytest.raises(ImageError, match="no images"):
        processor([])
    with pytest.raises(ImageError, match="channels"):
        ImageProcessor(do_resize=False, image_mean=[0.5] * 3, image_std=[0.5] * 3, do_convert_rgb=False)(torch.zeros(4, 5, 5))


def test_center_crop_keeps_dtype():
    x = torch.arange(2 * 5 * 7, dtype=torch.uint8).view(2, 5, 7)
    assert center_crop(x, 3, 3).dtype == torch.uint8 and center_crop(x, 9, 9).shape == (2, 9, 9)


def test_missing_pillow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(MissingDependencyError, match=r"zoo-hub\[vision\]"):
        ImageProcessor()(torch.zeros(3, 8, 8, dtype=torch.uint8))


def test_processing_needs_no_numpy(tmp_path):
    """Pillow is the one image dependency: with numpy unimportable, files and tensors still process."""
    path = tmp_path / "x.png"
    smooth_image(20, 30).save(path)
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import torch\n"
        "from zoo.image_processing import ImageProcessor\n"
        f"p = ImageProcessor(size={{'height': 8, 'width': 8}})\n"
        f"out = p([{str(path)!r}, torch.zeros(3, 10, 10, dtype=torch.uint8)]).pixel_values\n"
        "assert out.shape == (2, 3, 8, 8), out.shape\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_auto_image_processor_without_config_json(tmp_path):
    import zoo
    from zoo.errors import ModelFileNotFoundError

    settings = {"size": {"height": 20, "width": 30}, "image_processor_type": "ViTImageProcessor"}
    (tmp_path / PREPROCESSOR_NAME).write_text(json.dumps(settings))
    processor = zoo.AutoImageProcessor.from_pretrained(tmp_path, do_normalize=False)
    assert type(processor) is ImageProcessor and processor.size == {"height": 20, "width": 30} and not processor.do_normalize
    (tmp_path / PREPROCESSOR_NAME).unlink()
    with pytest.raises(ModelFileNotFoundError, match=PREPROCESSOR_NAME):
        zoo.AutoImageProcessor.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="from_pretrained"):
        zoo.AutoImageProcessor()
