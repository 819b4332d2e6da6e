"""Training simple-cnn with examples/train_simple_cnn.py: one process to high held-out accuracy, then two processes
under torchrun (DistributedDataParallel over gloo on the CPU) ending with identical weights on both ranks."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_simple_cnn.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_simple_cnn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_synthetic_set_is_labelled_and_deterministic(example):
    images, labels, id2label = example.make_synthetic_dataset(64, image_size=32, seed=3)
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.uint8
    assert set(labels.tolist()) == set(id2label) == {0, 1, 2, 3}
    again, labels_again, _ = example.make_synthetic_dataset(64, image_size=32, seed=3)
    assert torch.equal(images, again) and torch.equal(labels, labels_again)


def test_train_simple_cnn_to_high_held_out_accuracy_then_reload(example, tmp_path):
    args = example.parse_args(["--output-dir", str(tmp_path / "model"), "--num-images", "800", "--epochs", "3", "--cpu"])
    result = example.train(args)
    assert result["world_size"] == 1 and result["steps"] == 3 * 20
    assert result["accuracy"] > 0.9, result["accuracy"]  # 160 held-out images, 4 patterns
    model, test_set = result["model"].eval(), result["test_set"]

    folder = tmp_path / "model"
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json"}
    reloaded = zoo.AutoModelForImageClassification.from_pretrained(folder)
    pixels, labels = test_set.tensors
    with torch.no_grad():
        out = reloaded(pixel_values=pixels, labels=labels)
        assert torch.equal(out.logits, model(pixel_values=pixels).logits)
    assert out.loss is not None and float(out.loss) < 0.5  # the models return loss for labels
    assert reloaded.config.id2label == {0: "horizontal", 1: "vertical", 2: "diagonal", 3: "checkerboard"}

    # the pipeline on the saved folder reads images the way training did
    images, image_labels, _ = example.make_synthetic_dataset(12, seed=99)
    pipe = zoo.pipeline("image-classification", model=folder)
    predicted = [r[0]["label"] for r in pipe([img for img in images], top_k=1)]
    with torch.no_grad():
        direct = reloaded(pixel_values=pipe.image_processor(list(images)).pixel_values).logits.argmax(-1)
    assert predicted == [reloaded.config.id2label[int(i)] for i in direct]
    assert sum(p == reloaded.config.id2label[int(y)] for p, y in zip(predicted, image_labels)) >= 10


def test_train_from_a_saved_model_fine_tunes_it(example, tmp_path):
    first = example.train(example.parse_args(["--output-dir", str(tmp_path / "a"), "--num-images", "200", "--epochs", "1", "--cpu"]))
    second = example.train(example.parse_args(["--init-from", str(tmp_path / "a"), "--num-images", "200", "--max-steps", "3",
                                               "--cpu", "--seed", "1"]))
    assert second["steps"] == 3
    before = first["model"].state_dict()
    after = second["model"].state_dict()
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)


def test_ddp_with_torchrun_ends_with_identical_weights_on_both_ranks(tmp_path):
    states = tmp_path / "states"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
               str(SCRIPT), "--num-images", "400", "--epochs", "2", "--cpu", "--batch-size", "16",
               "--save-rank-states", str(states), "--output-dir", str(tmp_path / "model")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    from safetensors.torch import load_file

    initial = [load_file(states / f"rank{r}-initial.safetensors") for r in (0, 1)]
    final = [load_file(states / f"rank{r}-final.safetensors") for r in (0, 1)]
    assert final[0].keys() == final[1].keys() == initial[0].keys()
    for key in final[0]:
        assert torch.equal(initial[0][key], initial[1][key]), key  # same start on both ranks
        assert torch.equal(final[0][key], final[1][key]), key  # gradients were all-reduced every step
    assert any(not torch.equal(initial[0][k], final[0][k]) for k in final[0])  # and it did train
    model = zoo.AutoModelForImageClassification.from_pretrained(tmp_path / "model")  # rank 0 saved the result
    assert all(torch.equal(v, final[0][k]) for k, v in model.state_dict().items())
