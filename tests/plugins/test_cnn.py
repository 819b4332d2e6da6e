"""The CNN plugin: ResNet against transformers on the same files, and simple-cnn against the tutorial's network."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.image_checkpoints import make_resnet
from zoo import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification
from zoo.errors import ConfigError
from zoo.plugins.cnn.config import ResNetConfig, SimpleCNNConfig
from zoo.plugins.cnn.processing import ConvNextImageProcessor
from zoo.plugins.cnn.resnet import ResNetForImageClassification, ResNetModel
from zoo.plugins.cnn.simple_cnn import SimpleCNNForImageClassification, SimpleCNNModel

ATOL = 1e-5
LAYER_TYPES = ["basic", "bottleneck", "bottleneck-v1"]


@pytest.fixture(scope="module")
def resnets(tmp_path_factory):
    """One transformers checkpoint per layer type: {layer_type: (folder, transformers model)}."""
    root = tmp_path_factory.mktemp("resnet")
    return {lt: (root / lt, make_resnet(root / lt, lt, seed=i)) for i, lt in enumerate(LAYER_TYPES)}


def pixels(batch: int = 2, height: int = 64, width: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


# --- registration -------------------------------------------------------------------------------------------------------


def test_register_architectures_adds_resnet_and_simple_cnn(isolated_registry):
    archs = isolated_registry.architectures()
    for model_type in ("resnet", "simple-cnn"):
        arch = archs[model_type]
        assert arch.plugin == "zoo.plugins.cnn"
        assert set(arch.tasks) == {"base", "image-classification"}
        assert arch.image_processor is not None
    assert archs["resnet"].model_class("image-classification") is ResNetForImageClassification
    assert archs["simple-cnn"].model_class("base") is SimpleCNNModel


def test_plugin_import_loads_no_torch():
    code = "import sys, zoo.plugins.cnn, zoo.registry; zoo.registry.Registry(entry_points=False).load(); " \
           "assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- ResNet parity ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
def test_resnet_matches_transformers(resnets, layer_type):
    folder, reference = resnets[layer_type]
    model, info = AutoModelForImageClassification.from_pretrained(folder, output_loading_info=True)
    assert isinstance(model, ResNetForImageClassification) and not model.training
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    x = pixels()
    with torch.no_grad():
        ours, theirs = model(x, output_hidden_states=True), reference(x, output_hidden_states=True)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=ATOL, rtol=0)
    assert len(ours.hidden_states) == len(theirs.hidden_states)
    for a, b in zip(ours.hidden_states, theirs.hidden_states):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


@pytest.mark.parametrize("layer_type", ["basic", "bottleneck"])
def test_resnet_base_model_matches_transformers(resnets, layer_type):
    folder, reference = resnets[layer_type]
    model = AutoModel.from_pretrained(folder)  # a classification checkpoint into the bare model
    assert isinstance(model, ResNetModel)
    x = pixels(height=37, width=53, seed=1)  # odd sizes: padding and pooling arithmetic
    with torch.no_grad():
        ours, theirs = model(x), reference.resnet(x)
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.pooler_output, theirs.pooler_output, atol=ATOL, rtol=0)


def test_batchnorm_buffers_load(resnets):
    """running_mean / running_var / num_batches_tracked are in the checkpoint and must be used in eval mode."""
    folder, reference = resnets["bottleneck"]
    model = AutoModelForImageClassification.from_pretrained(folder)
    ours, theirs = model.state_dict(), reference.state_dict()
    assert set(ours) == set(theirs)
    for key in [k for k in theirs if "running_" in k or "num_batches_tracked" in k]:
        assert torch.equal(ours[key], theirs[key]), key
    assert ours["resnet.embedder.embedder.normalization.num_batches_tracked"].dtype == torch.int64


def test_checkpoint_without_batch_counters_loads_quietly(resnets, tmp_path, caplog_warnings):
    from safetensors.torch import load_file, save_file

    folder, reference = resnets["basic"]
    state = {k: v for k, v in load_file(folder / "model.safetensors").items() if not k.endswith("num_batches_tracked")}
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    model, info = AutoModelForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and "were not in the checkpoint" not in caplog_warnings.text
    norm = model.resnet.embedder.embedder.normalization
    assert int(norm.num_batches_tracked) == 0
    assert torch.equal(norm.running_var, reference.resnet.embedder.embedder.normalization.running_var)
    x = pixels()
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, reference(x).logits, atol=ATOL, rtol=0)


def test_train_mode_uses_batch_statistics_like_transformers(resnets):
    folder, reference = resnets["basic"]
    model = AutoModelForImageClassification.from_pretrained(folder).train()
    theirs = type(reference).from_pretrained(folder).train()
    x = pixels(batch=4)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, theirs(x).logits, atol=1e-4, rtol=0)
    a, b = model.resnet.embedder.embedder.normalization, theirs.resnet.embedder.embedder.normalization
    torch.testing.assert_close(a.running_mean, b.running_mean, atol=ATOL, rtol=0)
    assert int(a.num_batches_tracked) == int(b.num_batches_tracked)


@pytest.mark.parametrize("layer_type", ["basic", "bottleneck"])
def test_resnet_loss_with_labels_matches_transformers(resnets, layer_type):
    folder, reference = resnets[layer_type]
    model = AutoModelForImageClassification.from_pretrained(folder)
    x, labels = pixels(batch=3), torch.tensor([0, 4, 6])
    with torch.no_grad():
        ours, theirs = model(x, labels=labels), reference(x, labels=labels)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=ATOL, rtol=0)
    assert torch.allclose(ours.loss, F.cross_entropy(ours.logits, labels))
    assert model(x).loss is None


def test_resnet_save_round_trip_loads_in_transformers(resnets, tmp_path):
    import transformers

    folder, reference = resnets["bottleneck"]
    model = AutoModelForImageClassification.from_pretrained(folder)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "resnet" and saved["architectures"] == ["ResNetForImageClassification"]
    assert saved["id2label"]["3"] == "class-3"
    again = transformers.ResNetForImageClassification.from_pretrained(tmp_path).eval()
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path)
    x = pixels()
    with torch.no_grad():
        torch.testing.assert_close(again(x).logits, reference(x).logits, atol=ATOL, rtol=0)
        assert torch.equal(reloaded(x).logits, model(x).logits)


def test_new_label_count_reinitialises_only_the_classifier(resnets, caplog_warnings):
    folder, reference = resnets["basic"]
    model, info = AutoModelForImageClassification.from_pretrained(folder, num_labels=3, ignore_mismatched_sizes=True,
                                                                  output_loading_info=True)
    assert model.classifier[1].out_features == 3 and len(info["mismatched_keys"]) == 2
    assert torch.equal(model.resnet.embedder.embedder.convolution.weight, reference.resnet.embedder.embedder.convolution.weight)
    assert model(pixels()).logits.shape == (2, 3)


def test_resnet_dtype_casts_buffers_too(resnets):
    folder, reference = resnets["basic"]
    model = AutoModelForImageClassification.from_pretrained(folder, dtype=torch.float64)
    norm = model.resnet.embedder.embedder.normalization
    assert norm.running_var.dtype == torch.float64 and norm.num_batches_tracked.dtype == torch.int64
    with torch.no_grad():
        torch.testing.assert_close(model(pixels().double()).logits.float(), reference(pixels()).logits, atol=ATOL, rtol=0)


def test_published_resnet_config_reads(tmp_path):
    """microsoft/resnet-50's config.json carries backbone keys zoo does not use; they are kept and written back."""
    published = {
        "architectures": ["ResNetForImageClassification"], "depths": [3, 4, 6, 3], "downsample_in_first_stage": False,
        "embedding_size": 64, "hidden_act": "relu", "hidden_sizes": [256, 512, 1024, 2048], "layer_type": "bottleneck",
        "model_type": "resnet", "num_channels": 3, "out_features": ["stage4"], "out_indices": [4],
        "stage_names": ["stem", "stage1", "stage2", "stage3", "stage4"], "torch_dtype": "float32",
        "id2label": {"0": "tench, Tinca tinca", "1": "goldfish, Carassius auratus"},
        "label2id": {"tench, Tinca tinca": 0, "goldfish, Carassius auratus": 1},
    }
    (tmp_path / "config.json").write_text(json.dumps(published))
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, ResNetConfig) and config.num_labels == 2 and config.id2label[1].startswith("goldfish")
    assert config.to_dict()["stage_names"] == published["stage_names"]
    assert not config.downsample_in_bottleneck


def test_resnet_config_is_checked():
    with pytest.raises(ConfigError, match="layer_type"):
        ResNetConfig(layer_type="wide")
    with pytest.raises(ConfigError, match="depths"):
        ResNetConfig(hidden_sizes=[8, 16], depths=[1])


def test_wrong_channel_count_is_explained(resnets):
    model = AutoModelForImageClassification.from_pretrained(resnets["basic"][0])
    with pytest.raises(ValueError, match="num_channels=3"):
        model(torch.zeros(1, 1, 32, 32))


def test_auto_image_processor_reads_the_resnet_file(resnets):
    processor = AutoImageProcessor.from_pretrained(resnets["basic"][0])
    assert isinstance(processor, ConvNextImageProcessor) and processor.size == {"shortest_edge": 64}
    assert isinstance(AutoImageProcessor.from_config(ResNetConfig()), ConvNextImageProcessor)


# --- simple-cnn ---------------------------------------------------------------------------------------------------------


class TutorialNet(nn.Module):
    """The network of PyTorch's CIFAR-10 tutorial, verbatim."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def test_simple_cnn_is_the_tutorial_network():
    torch.manual_seed(0)
    tutorial = TutorialNet().eval()
    torch.manual_seed(0)
    model = SimpleCNNForImageClassification(SimpleCNNConfig()).eval()
    assert model.state_dict().keys() == tutorial.state_dict().keys()
    for key, value in tutorial.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key  # same seed, same init
    x = pixels(batch=4, height=32, width=32)
    assert torch.equal(model(x).logits, tutorial(x))
    assert model.config.num_labels == 10 and model.config.feature_size == 400


def test_tutorial_state_dict_loads_as_a_zoo_checkpoint(tmp_path):
    torch.manual_seed(1)
    tutorial = TutorialNet().eval()
    torch.save(tutorial.state_dict(), tmp_path / "pytorch_model.bin")
    SimpleCNNConfig().save_pretrained(tmp_path)
    model, info = AutoModelForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    x = pixels(height=32, width=32)
    assert torch.equal(model(x).logits, tutorial(x))


def test_simple_cnn_save_load_round_trip(tmp_path):
    config = SimpleCNNConfig(id2label={0: "cat", 1: "dog", 2: "bird"})
    model = SimpleCNNForImageClassification(config).eval()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "simple-cnn" and saved["conv_channels"] == [6, 16]
    assert saved["architectures"] == ["SimpleCNNForImageClassification"]
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert isinstance(reloaded, SimpleCNNForImageClassification) and reloaded.config == model.config
    x = pixels(height=32, width=32)
    with torch.no_grad():
        assert torch.equal(reloaded(x).logits, model(x).logits)
    base = AutoModel.from_pretrained(tmp_path)  # fc3 is the head: the bare model leaves it out
    assert isinstance(base, SimpleCNNModel) and base(x).pooler_output.shape == (2, 84)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), SimpleCNNConfig)


def test_simple_cnn_is_configurable(tmp_path):
    config = SimpleCNNConfig(num_channels=1, image_size=28, conv_channels=[4, 8, 12], kernel_size=3,
                             hidden_sizes=[32], num_labels=5)
    model = SimpleCNNForImageClassification(config)
    assert config.feature_size == 12 * 1 * 1  # 28 -> 13 -> 5 -> 1
    assert [n for n, _ in model.named_children()] == ["conv1", "conv2", "conv3", "pool", "fc1", "dropout", "fc2"]
    out = model(torch.randn(3, 1, 28, 28), labels=torch.tensor([0, 1, 4]), output_hidden_states=True)
    assert out.logits.shape == (3, 5) and len(out.hidden_states) == 3
    assert torch.allclose(out.loss, F.cross_entropy(out.logits, torch.tensor([0, 1, 4])))
    model.save_pretrained(tmp_path)
    assert AutoModelForImageClassification.from_pretrained(tmp_path).config == config
    with pytest.raises(ValueError, match="28x28"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ConfigError, match="too small"):
        SimpleCNNConfig(image_size=8)
    with pytest.raises(ConfigError, match="conv_channels"):
        SimpleCNNConfig(conv_channels=[])


def test_simple_cnn_image_processor_defaults_and_file(tmp_path):
    config = SimpleCNNConfig(image_size=24)
    processor = AutoImageProcessor.from_config(config)
    assert processor.size == {"height": 24, "width": 24} and processor.image_std == [0.5, 0.5, 0.5]
    SimpleCNNForImageClassification(config).save_pretrained(tmp_path)
    assert AutoImageProcessor.from_pretrained(tmp_path).size == {"height": 24, "width": 24}  # no file: defaults
    processor.save_pretrained(tmp_path)
    assert AutoImageProcessor.from_pretrained(tmp_path, size={"height": 16, "width": 16}).size == {"height": 16, "width": 16}


def test_loading_logs_nothing_for_a_complete_checkpoint(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    SimpleCNNForImageClassification(SimpleCNNConfig()).save_pretrained(tmp_path)
    AutoModelForImageClassification.from_pretrained(tmp_path)
    assert not caplog.records
