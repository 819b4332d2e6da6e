"""``zoo export onnx|executorch MODEL OUT`` through zoo.cli.main: files written, outputs equal zoo's, errors one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from tests.checkpoints import make_bert
from tests.export.conftest import assert_all_close, read_meta, text_inputs, zoo_outputs
from zoo.cli import main


@pytest.fixture
def bert_folder(tmp_path):
    make_bert(tmp_path / "src", "sequence-classification", seed=31, num_hidden_layers=1)
    return tmp_path / "src"


def test_export_onnx_writes_a_program_that_equals_zoo(bert_folder, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from zoo.export import onnx_session

    assert main(["export", "onnx", str(bert_folder), str(tmp_path / "out"), "--task", "feature-extraction"]) == 0
    path, summary = capsys.readouterr().out.strip().splitlines()
    assert path == str(tmp_path / "out" / "model.onnx")
    assert summary.startswith("onnx BertModel (base): inputs input_ids[batch, sequence]")
    meta = read_meta(tmp_path / "out")
    assert meta["task"] == "base" and [o["name"] for o in meta["outputs"]] == ["last_hidden_state", "pooler_output"]
    model = zoo.AutoModel.from_pretrained(bert_folder)
    inputs = text_inputs(model.config.vocab_size, 2, 11, token_types=True)
    names = ["last_hidden_state", "pooler_output"]
    assert_all_close(onnx_session(path).run(None, inputs), zoo_outputs(model, inputs, names), names)


def test_export_onnx_options_reach_the_exporter(bert_folder, tmp_path, capsys):
    pytest.importorskip("onnxscript")
    assert main(["export", "onnx", str(bert_folder), str(tmp_path / "m.onnx"), "--opset", "18", "--static",
                 "--dtype", "float16"]) == 0
    meta = read_meta(tmp_path)
    assert meta["opset"] == 18 and meta["dtype"] == "float16" and meta["file"] == "m.onnx"
    assert meta["inputs"][0]["shape"] == [1, 64]  # --static: batch 1, the model's 64 positions


def test_export_errors_are_one_line(bert_folder, tmp_path, capsys):
    pytest.importorskip("onnxscript")
    assert main(["export", "onnx", str(bert_folder), str(tmp_path / "out"), "--opset", "12"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: opset 12 cannot be written") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main(["export", "onnx", str(bert_folder), str(tmp_path / "out"), "--task", "translation"]) == 1
    assert "task 'translation' is not a task zoo exports" in capsys.readouterr().err
    assert main(["export", "onnx", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.startswith("zoo: error:")


def test_export_without_a_format_prints_help(capsys):
    assert main(["export"]) == 2
    out = capsys.readouterr().out
    assert "onnx" in out and "executorch" in out


def test_export_executorch_writes_a_program_that_equals_zoo(tmp_path, capsys):
    runtime = pytest.importorskip("executorch.runtime")
    from zoo.plugins.cnn.config import SimpleCNNConfig
    from zoo.plugins.cnn.simple_cnn import SimpleCNNForImageClassification

    torch.manual_seed(32)
    model = SimpleCNNForImageClassification(SimpleCNNConfig(image_size=20, kernel_size=3, conv_channels=[4, 6],
                                                            hidden_sizes=[16], num_labels=4)).eval()
    model.save_pretrained(tmp_path / "src")
    assert main(["export", "executorch", str(tmp_path / "src"), str(tmp_path / "out"), "--max-batch-size", "3"]) == 0
    path = capsys.readouterr().out.splitlines()[0]
    meta = read_meta(tmp_path / "out")
    assert meta["format"] == "executorch" and meta["dynamic_axes"]["batch"] == {"min": 1, "max": 3}
    method = runtime.Runtime.get().load_program(path).load_method("forward")
    for batch in (1, 3):
        pixels = np.random.default_rng(batch).standard_normal((batch, 3, 20, 20)).astype(np.float32)
        got = [t.numpy() for t in method.execute([torch.from_numpy(pixels)])]
        assert_all_close(got, zoo_outputs(model, {"pixel_values": pixels}, ["logits"]), ["logits"])
