"""image-classification against transformers' pipeline on the same tiny ResNet files and the same images."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import zoo
from tests.image_checkpoints import make_resnet, noise_image, smooth_image
from zoo.errors import DeviceError, PipelineError
from zoo.pipelines.image_classification import ImageClassificationPipeline
from zoo.plugins.cnn.config import SimpleCNNConfig
from zoo.plugins.cnn.simple_cnn import SimpleCNNForImageClassification

SCORE_ATOL = 1e-4


@pytest.fixture(scope="module")
def resnet_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resnet-pipeline")
    make_resnet(folder, "bottleneck", seed=5, num_labels=7)
    return folder


@pytest.fixture(scope="module")
def hf_pipe(resnet_dir):
    from transformers import pipeline

    return pipeline("image-classification", model=str(resnet_dir), device="cpu")


@pytest.fixture(scope="module")
def test_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    images = [noise_image(120, 90, seed=1), smooth_image(64, 200, seed=2), noise_image(80, 80, seed=3, mode="RGBA"),
              noise_image(50, 70, seed=4, mode="L"), smooth_image(300, 120, seed=5)]
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"image{i}.png")
        image.save(paths[-1])
    return images, paths


def assert_same_results(ours, theirs):
    assert len(ours) == len(theirs)
    assert {r["label"] for r in ours} == {r["label"] for r in theirs}
    by_label = {r["label"]: r["score"] for r in theirs}
    for r in ours:
        assert abs(r["score"] - by_label[r["label"]]) < SCORE_ATOL, (ours, theirs)
    scores = [r["score"] for r in ours]
    assert scores == sorted(scores, reverse=True)
    for a, b in zip(ours, theirs):  # same order wherever the scores are not tied
        assert a["label"] == b["label"] or abs(a["score"] - b["score"]) < SCORE_ATOL


def test_register_pipelines_adds_image_classification_with_a_pinned_default(isolated_registry):
    task = isolated_registry.task("image-classification")
    assert task.pipeline_class() is ImageClassificationPipeline
    repo, _, sha = task.default_model.partition("@")
    assert repo == "microsoft/resnet-50" and re.fullmatch(r"[0-9a-f]{40}", sha)


def test_labels_and_scores_match_transformers(resnet_dir, hf_pipe, test_images):
    images, paths = test_images
    pipe = zoo.pipeline("image-classification", model=resnet_dir)
    for image, path in zip(images, paths):
        assert_same_results(pipe(image), hf_pipe(image))
        assert_same_results(pipe(str(path)), hf_pipe(str(path)))
    assert_same_results(pipe(paths[0], top_k=2), hf_pipe(str(paths[0]), top_k=2))
    assert_same_results(pipe(paths[0], top_k=50), hf_pipe(str(paths[0]), top_k=50))  # capped at the 7 labels
    assert_same_results(pipe(images[1], function_to_apply="sigmoid"), hf_pipe(images[1], function_to_apply="sigmoid"))
    assert_same_results(pipe(images[1], function_to_apply="none"), hf_pipe(images[1], function_to_apply="none"))


def test_arrays_and_tensors_match_transformers(resnet_dir, hf_pipe, test_images):
    images, _ = test_images
    pipe = zoo.pipeline("image-classification", model=resnet_dir)
    array = np.asarray(images[0])  # (H, W, 3) uint8
    assert_same_results(pipe(array), hf_pipe(array))
    chw = torch.from_numpy(array.transpose(2, 0, 1).copy())
    assert_same_results(pipe(chw), hf_pipe(chw))


def test_lists_batch_and_keep_order(resnet_dir, hf_pipe, test_images):
    images, paths = test_images
    pipe = zoo.pipeline("image-classification", model=resnet_dir, batch_size=2)
    mixed = [paths[0], images[1], np.asarray(images[4]), str(paths[2]), images[3]]
    ours = pipe(mixed, top_k=3)
    theirs = hf_pipe([str(paths[0]), images[1], images[4], str(paths[2]), images[3]], top_k=3)
    for a, b in zip(ours, theirs):
        assert_same_results(a, b)
    for a, b in zip(pipe(mixed, batch_size=5, top_k=3), ours):  # the batch size does not change results
        assert_same_results(a, b)
    stacked = torch.from_numpy(np.asarray(images[0]).copy()).permute(2, 0, 1).expand(3, -1, -1, -1)  # (3, C, H, W)
    assert len(pipe(stacked)) == 3  # a 4-D tensor is a batch


def test_generators_give_a_lazy_iterator(resnet_dir, test_images):
    _, paths = test_images
    pipe = zoo.pipeline("image-classification", model=resnet_dir)
    results = pipe(p for p in paths[:3])
    assert not isinstance(results, list)
    assert [r[0]["label"] for r in results] == [pipe(p)[0]["label"] for p in paths[:3]]


def test_top_k_none_gives_every_label(resnet_dir, test_images):
    pipe = zoo.pipeline("image-classification", model=resnet_dir, top_k=None)
    result = pipe(test_images[0][0])
    assert len(result) == 7 and sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)


def test_images_of_different_sizes_batch_together(resnet_dir):
    """A processor without a crop gives several sizes; each size is forwarded as its own stack."""
    from zoo.image_processing import ImageProcessor

    model = zoo.AutoModelForImageClassification.from_pretrained(resnet_dir)
    processor = ImageProcessor(size={"shortest_edge": 32})
    pipe = zoo.pipeline("image-classification", model=model, image_processor=processor, batch_size=4)
    images = [noise_image(40, 80, seed=1), noise_image(64, 64, seed=2), noise_image(80, 40, seed=3), noise_image(50, 100, seed=4)]
    together = pipe(images, top_k=1)
    alone = [pipe(image, top_k=1) for image in images]
    for a, b in zip(together, alone):
        assert a[0]["label"] == b[0]["label"] and a[0]["score"] == pytest.approx(b[0]["score"], abs=1e-5)


def test_loaded_model_without_processor_uses_the_architecture_default(tmp_path):
    model = SimpleCNNForImageClassification(SimpleCNNConfig(id2label={0: "a", 1: "b"})).eval()
    pipe = zoo.pipeline("image-classification", model=model)
    assert pipe.image_processor.size == {"height": 32, "width": 32}
    result = pipe(noise_image(45, 45))
    assert {r["label"] for r in result} == {"a", "b"}  # top 5 capped at the 2 labels


def test_simple_cnn_folder_through_the_pipeline(tmp_path):
    model = SimpleCNNForImageClassification(SimpleCNNConfig()).eval()
    model.save_pretrained(tmp_path)
    pipe = zoo.pipeline("image-classification", model=tmp_path)
    image = smooth_image(32, 32)
    with torch.no_grad():
        expected = model(pipe.image_processor(image).pixel_values).logits.softmax(-1)[0]
    result = pipe(image, top_k=1)[0]
    assert result["label"] == model.config.id2label[int(expected.argmax())]
    assert result["score"] == pytest.approx(float(expected.max()), abs=1e-6)


def test_device_and_dtype_options(resnet_dir, test_images):
    image = test_images[0][0]
    reference = zoo.pipeline("image-classification", model=resnet_dir)(image)
    pipe = zoo.pipeline("image-classification", model=resnet_dir, device="cpu", dtype=torch.float64)
    assert pipe.device == torch.device("cpu") and pipe.model.dtype == torch.float64
    assert_same_results(pipe(image), reference)
    assert zoo.pipeline("image-classification", model=resnet_dir, device=-1).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            zoo.pipeline("image-classification", model=resnet_dir, device="cuda")


def test_a_file_that_is_not_an_image_names_the_file(resnet_dir, tmp_path):
    bogus = tmp_path / "holiday.jpg"
    bogus.write_text("this is text")
    pipe = zoo.pipeline("image-classification", model=resnet_dir)
    with pytest.raises(PipelineError, match="holiday.jpg"):
        pipe(str(bogus))
    with pytest.raises(PipelineError, match="does not exist"):
        pipe([str(tmp_path / "missing.png")])
    with pytest.raises(PipelineError, match="cannot read an image from a int"):
        pipe([42])
    with pytest.raises(PipelineError, match="unknown options"):
        pipe(str(bogus), temperature=2)
    with pytest.raises(PipelineError, match="top_k"):
        pipe(str(bogus), top_k=0)


def test_the_default_model_is_named_when_it_is_missing(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="microsoft/resnet-50"):
        zoo.pipeline("image-classification")


def test_preprocessor_file_settings_are_used(resnet_dir, tmp_path, test_images):
    """The pipeline reads preprocessor_config.json: a different normalisation changes the scores."""
    import shutil

    shutil.copytree(resnet_dir, tmp_path / "m")
    path = tmp_path / "m" / "preprocessor_config.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}))
    image = test_images[0][0]
    a = zoo.pipeline("image-classification", model=resnet_dir)(image, top_k=None)
    b = zoo.pipeline("image-classification", model=tmp_path / "m")(image, top_k=None)
    assert [r["score"] for r in a] != pytest.approx([r["score"] for r in b])
