"""PreTrainedModel: loading every weights format transformers writes, saving files transformers reads, and the
failures. Checkpoints are small random BERTs written by transformers at test time; zoo's outputs are compared with
transformers' on the very same files.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import zoo
from tests.checkpoints import assert_outputs_equal
from tests.plugins.test_bert import make_batch, write_checkpoint
from zoo.errors import ConfigError, ModelFileNotFoundError, ShapeMismatchError, WeightsError
from zoo.modeling import ModelOutput, PreTrainedModel, empty_weights, parse_size
from zoo.plugins.bert.config import BertConfig
from zoo.plugins.bert.modeling import (BertForMaskedLM, BertForPreTraining, BertForQuestionAnswering,
                                       BertForSequenceClassification, BertForTokenClassification, BertModel)

ZOO = {"base": BertModel, "pretraining": BertForPreTraining, "masked-lm": BertForMaskedLM,
       "sequence-classification": BertForSequenceClassification,
       "token-classification": BertForTokenClassification, "question-answering": BertForQuestionAnswering}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to show a failing call changed nothing on disk."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def zoo_warnings(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("zoo") and text in r.getMessage()]


def outputs(model, batch):
    with torch.no_grad():
        return model(**batch)


# --- weight formats ------------------------------------------------------------------------------------------------------


def _rewrite_as_bin(folder: Path, hf, *, legacy: bool = False, shards: int = 1) -> None:
    """Replace model.safetensors with what torch.save of the state dict writes (older transformers' format)."""
    (folder / "model.safetensors").unlink()
    state = hf.state_dict()  # tied tensors included, as transformers v4 saved them
    if shards == 1:
        torch.save(state, folder / "pytorch_model.bin", _use_new_zipfile_serialization=not legacy)
        return
    keys = list(state)
    names = [f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin" for i in range(shards)]
    weight_map = {}
    for i, name in enumerate(names):
        part = {k: state[k] for k in keys[i::shards]}
        torch.save(part, folder / name)
        weight_map.update({k: name for k in part})
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.mark.parametrize("layout", ["safetensors", "sharded-safetensors", "bin", "bin-legacy-format", "sharded-bin"])
def test_every_weights_layout_loads_like_transformers(tmp_path, layout):
    hf = write_checkpoint(tmp_path, "masked-lm")
    if layout == "sharded-safetensors":
        tmp_path = tmp_path / "sharded"
        hf.save_pretrained(tmp_path, max_shard_size="20KB")
        assert not (tmp_path / "model.safetensors").exists()
        index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
        assert len(set(index["weight_map"].values())) > 1
    elif layout.startswith("bin") or layout == "sharded-bin":
        _rewrite_as_bin(tmp_path, hf, legacy=layout == "bin-legacy-format", shards=3 if layout == "sharded-bin" else 1)
    files_before = snapshot(tmp_path)
    model, info = BertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    batch = make_batch({})
    assert_outputs_equal(outputs(model, batch), outputs(hf, batch))
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    with torch.no_grad():  # weights may be memory-mapped: writing to them must not reach the file
        for param in model.parameters():
            param.add_(1.0)
    assert snapshot(tmp_path) == files_before


def test_safetensors_is_preferred_and_the_bin_never_read(tmp_path):
    hf = write_checkpoint(tmp_path, "base")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle at all")
    batch = make_batch({})
    assert_outputs_equal(outputs(BertModel.from_pretrained(tmp_path), batch), outputs(hf, batch))


class _RunsCode:
    """Unpickling this creates a marker file: proof that the loader ran code from the checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_bin_holding_a_pickled_object_is_refused_and_never_run(tmp_path, legacy):
    hf = write_checkpoint(tmp_path, "base")
    marker = tmp_path.parent / f"{tmp_path.name}-unpickled"
    (tmp_path / "model.safetensors").unlink()
    torch.save({**hf.state_dict(), "payload": _RunsCode(marker)}, tmp_path / "pytorch_model.bin",
               _use_new_zipfile_serialization=not legacy)
    before = snapshot(tmp_path)
    with pytest.raises(WeightsError, match=r"pytorch_model.bin holds objects other than tensors.*never unpickles "
                                           r"arbitrary objects \(Unsupported global: GLOBAL (io|builtins)\.open"):
        BertModel.from_pretrained(tmp_path)
    assert not marker.exists()
    assert snapshot(tmp_path) == before


def test_bin_holding_a_plain_non_tensor_value_is_refused(tmp_path):
    hf = write_checkpoint(tmp_path, "base")
    (tmp_path / "model.safetensors").unlink()
    torch.save({**hf.state_dict(), "step": 3}, tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="entry 'step' is a int, not a tensor"):
        BertModel.from_pretrained(tmp_path)


# --- building on meta, dtype, device -----------------------------------------------------------------------------------------


@pytest.fixture
def real_inits(monkeypatch):
    """Inside ``with real_inits as calls:``, record every torch.nn.init call on a real (non-meta) tensor: the
    random init that loading must not do."""

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, tuple[int, ...]]] = []
            self.active = False

        def __enter__(self):
            self.active = True
            return self.calls

        def __exit__(self, *exc):
            self.active = False

    recorder = Recorder()
    for name in ("normal_", "uniform_", "kaiming_uniform_", "trunc_normal_", "ones_", "zeros_"):
        real = getattr(torch.nn.init, name)

        def spy(tensor, *args, _real=real, _name=name, **kwargs):
            if recorder.active and tensor.device.type != "meta":
                recorder.calls.append((_name, tuple(tensor.shape)))
            return _real(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.nn.init, name, spy)
    return recorder


def test_loading_builds_on_meta_and_never_initialises_what_the_checkpoint_has(tmp_path, real_inits):
    write_checkpoint(tmp_path, "pretraining")
    with real_inits as calls:
        model = BertForPreTraining.from_pretrained(tmp_path)
    assert calls == []
    assert all(p.device.type == "cpu" for p in model.parameters())
    with real_inits as calls:
        BertForPreTraining.from_config(model.config)
    assert calls, "the spy sees the init that from_config does"


def test_only_the_missing_head_is_initialised(tmp_path, real_inits):
    write_checkpoint(tmp_path, "base")
    with real_inits as calls:
        model = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert calls and {shape for _, shape in calls} <= {(3, 32), (3,)}
    assert model.classifier.weight.std() > 0 and torch.equal(model.classifier.bias, torch.zeros(3))


def test_empty_weights_puts_every_tensor_on_meta_and_restores_torch():
    normal = torch.nn.init.normal_
    with empty_weights():
        model = BertModel(BertConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=1))
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert torch.nn.init.normal_ is normal
    with pytest.raises(RuntimeError), empty_weights():
        raise RuntimeError("boom")
    assert torch.nn.init.normal_ is normal
    assert torch.nn.Linear(2, 2).weight.device.type == "cpu" and torch.empty(1).device.type == "cpu"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, "bfloat16", "torch.float16"])
def test_dtype_argument_matches_transformers_in_that_dtype(tmp_path, dtype):
    write_checkpoint(tmp_path, "masked-lm")
    model = BertForMaskedLM.from_pretrained(tmp_path, dtype=dtype)
    expected_dtype = dtype if isinstance(dtype, torch.dtype) else getattr(torch, dtype.removeprefix("torch."))
    assert {p.dtype for p in model.parameters()} == {expected_dtype} and model.dtype == expected_dtype
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path, dtype=expected_dtype).eval()
    batch = make_batch({})
    torch.testing.assert_close(outputs(model, batch).logits, outputs(hf, batch).logits, atol=1e-5, rtol=1e-5)


def test_dtype_auto_reads_the_dtype_the_config_records_and_save_records_it(tmp_path):
    hf = write_checkpoint(tmp_path / "fp16", "base")
    hf.half().save_pretrained(tmp_path / "fp16")
    assert BertModel.from_pretrained(tmp_path / "fp16", dtype="auto").dtype == torch.float16
    assert BertModel.from_pretrained(tmp_path / "fp16").dtype == torch.float16  # "auto" is the default
    upcast = BertModel.from_pretrained(tmp_path / "fp16", dtype=torch.float32)  # values as stored
    assert upcast.dtype == torch.float32
    torch.testing.assert_close(upcast.pooler.dense.weight, hf.pooler.dense.weight.float(), atol=0, rtol=0)
    # a model loaded in another dtype and saved says so in its config, for zoo and for transformers
    write_checkpoint(tmp_path / "fp32", "base")
    BertModel.from_pretrained(tmp_path / "fp32", dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"
    assert BertModel.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16
    assert transformers.BertModel.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16


def test_unknown_dtype_is_a_clear_error(tmp_path):
    write_checkpoint(tmp_path, "base")
    with pytest.raises(ValueError, match="dtype 'float42' is not a torch dtype"):
        BertModel.from_pretrained(tmp_path, dtype="float42")


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_device_argument(tmp_path, device):
    write_checkpoint(tmp_path, "masked-lm")
    model = BertForMaskedLM.from_pretrained(tmp_path, device=device)
    assert model.device == torch.device("cpu")
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}


# --- missing, unexpected and mismatched keys ------------------------------------------------------------------------------


def test_base_checkpoint_under_a_task_head_warns_once_naming_the_new_head(tmp_path, caplog):
    hf = write_checkpoint(tmp_path, "base")  # keys without the "bert." prefix
    assert not any(k.startswith("bert.") for k in load_file(tmp_path / "model.safetensors"))
    caplog.set_level(logging.WARNING)
    model, info = BertForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    missing = zoo_warnings(caplog, "were not in the checkpoint")
    assert len(missing) == 1 and "classifier.weight" in missing[0].getMessage() and "classifier.bias" in missing[0].getMessage()
    assert zoo_warnings(caplog, "not used") == []
    _, hf_info = transformers.BertForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(hf_info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    batch = make_batch({})
    assert_outputs_equal(outputs(model.bert, batch), outputs(hf, batch))


@pytest.mark.parametrize("task", ["sequence-classification", "masked-lm"])
def test_task_checkpoint_into_the_base_model_warns_once_naming_the_unused_keys(tmp_path, caplog, task):
    hf = write_checkpoint(tmp_path, task)  # keys with the "bert." prefix, plus a head
    caplog.set_level(logging.WARNING)
    model, info = BertModel.from_pretrained(tmp_path, output_loading_info=True)
    unused = zoo_warnings(caplog, "not used by BertModel")
    assert len(unused) == 1
    _, hf_info = transformers.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == sorted(hf_info["unexpected_keys"])
    assert all(key in unused[0].getMessage() for key in info["unexpected_keys"])
    if task == "masked-lm":  # that head has no pooler: newly initialised, named in one warning
        assert sorted(info["missing_keys"]) == ["pooler.dense.bias", "pooler.dense.weight"]
        assert len(zoo_warnings(caplog, "pooler.dense.weight")) == 1
    else:
        assert info["missing_keys"] == []
        assert_outputs_equal(outputs(model, make_batch({})), outputs(hf.bert, make_batch({})))
    torch.testing.assert_close(model.encoder.layer[1].output.dense.weight, hf.bert.encoder.layer[1].output.dense.weight)


def test_legacy_gamma_beta_checkpoint_loads_and_saves_modern_names(tmp_path, caplog):
    hf = write_checkpoint(tmp_path / "modern", "masked-lm")
    state = load_file(tmp_path / "modern" / "model.safetensors")
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in state.items()}
    assert sum(k.endswith("LayerNorm.gamma") for k in legacy) == 6
    legacy["bert.embeddings.position_ids"] = torch.arange(64)[None]  # a buffer old transformers saved
    (tmp_path / "legacy").mkdir()
    save_file(legacy, tmp_path / "legacy" / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "legacy" / "config.json").write_bytes((tmp_path / "modern" / "config.json").read_bytes())
    caplog.set_level(logging.WARNING)
    model = BertForMaskedLM.from_pretrained(tmp_path / "legacy")
    assert zoo_warnings(caplog, "") == []
    batch = make_batch({})
    assert_outputs_equal(outputs(model, batch), outputs(hf, batch))
    model.save_pretrained(tmp_path / "saved")
    assert set(load_file(tmp_path / "saved" / "model.safetensors")) == set(state)


def test_shape_mismatch_is_an_error_naming_the_key_and_both_shapes(tmp_path):
    write_checkpoint(tmp_path, "masked-lm")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "vocab_size": 100}))
    before = snapshot(tmp_path)
    with pytest.raises(ShapeMismatchError, match=r"config\.json: vocab_size=100 does not match the weights: model\.safetensors "
                                                 r"has 'bert\.embeddings\.word_embeddings\.weight' of shape \(90, 32\), "
                                                 r"where this config needs \(100, 32\); set vocab_size to 90") as caught:
        BertForMaskedLM.from_pretrained(tmp_path)
    assert isinstance(caught.value, ConfigError)
    assert snapshot(tmp_path) == before


def test_num_labels_override_mismatch_errors_or_reinitialises_when_asked(tmp_path, caplog):
    write_checkpoint(tmp_path, "sequence-classification", num_labels=3)
    with pytest.raises(ShapeMismatchError, match=r"num_labels=5 \(a keyword argument of from_pretrained\) does not match "
                                                 r"the weights: .*'classifier\.(weight|bias)' of shape \(3,( 32)?\), where "
                                                 r"this config needs \(5,( 32)?\); set num_labels to 3.*ignore_mismatched_sizes"):
        BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    caplog.set_level(logging.WARNING)
    model, info = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True,
                                                                 output_loading_info=True)
    assert model.classifier.weight.shape == (5, 32) and model.classifier.weight.device.type == "cpu"
    assert sorted(m.split(":")[0] for m in info["mismatched_keys"]) == ["classifier.bias", "classifier.weight"]
    assert len(zoo_warnings(caplog, "had other shapes")) == 1
    assert info["missing_keys"] == [] and zoo_warnings(caplog, "were not in the checkpoint") == []
    _, hf_info = transformers.BertForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert not hf_info["missing_keys"]
    assert torch.isfinite(outputs(model, make_batch({})).logits).all()


# --- tied weights -------------------------------------------------------------------------------------------------------------


def _tied(model) -> bool:
    return (model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
            and model.cls.predictions.decoder.bias is model.cls.predictions.bias)


@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForPreTraining])
def test_tied_weights_stay_tied_after_loading_saving_and_training(tmp_path, cls):
    task = "masked-lm" if cls is BertForMaskedLM else "pretraining"
    hf = write_checkpoint(tmp_path / "hf", task)
    model = cls.from_pretrained(tmp_path / "hf")
    assert _tied(model)
    assert len(list(model.parameters())) == len(list(hf.parameters()))
    model.save_pretrained(tmp_path / "zoo")
    saved = load_file(tmp_path / "zoo" / "model.safetensors")
    assert "cls.predictions.decoder.weight" not in saved and "cls.predictions.decoder.bias" not in saved
    model = cls.from_pretrained(tmp_path / "zoo")
    assert _tied(model)
    files_before = snapshot(tmp_path / "zoo")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = make_batch({})
    labels = torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)
    extra = {"next_sentence_label": torch.tensor([0, 1, 0])} if task == "pretraining" else {}
    for _ in range(2):
        optimizer.zero_grad()
        model(**batch, labels=labels, **extra).loss.backward()
        optimizer.step()
    assert _tied(model)
    assert not torch.equal(model.bert.embeddings.word_embeddings.weight, hf.bert.embeddings.word_embeddings.weight)
    assert snapshot(tmp_path / "zoo") == files_before  # training in place never writes through to the weights file


def test_untied_embeddings_load_and_save_separately(tmp_path):
    hf = write_checkpoint(tmp_path / "hf", "masked-lm", tie_word_embeddings=False)
    model = BertForMaskedLM.from_pretrained(tmp_path / "hf")
    decoder, embeddings = model.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight
    assert decoder is not embeddings and not torch.equal(decoder, embeddings)
    assert model.cls.predictions.decoder.bias is not model.cls.predictions.bias
    torch.testing.assert_close(decoder, hf.cls.predictions.decoder.weight, atol=0, rtol=0)
    model.save_pretrained(tmp_path / "zoo")
    assert {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"} <= set(load_file(tmp_path / "zoo" / "model.safetensors"))
    again = transformers.BertForMaskedLM.from_pretrained(tmp_path / "zoo").eval()
    batch = make_batch({})
    assert_outputs_equal(outputs(model, batch), outputs(again, batch))


def test_from_config_ties_only_when_the_config_says_so():
    model = BertForMaskedLM.from_config(BertConfig(vocab_size=90, hidden_size=32, num_attention_heads=4,
                                                   num_hidden_layers=1, tie_word_embeddings=False))
    assert not _tied(model)
    assert _tied(BertForMaskedLM.from_config(BertConfig(vocab_size=90, hidden_size=32, num_attention_heads=4,
                                                        num_hidden_layers=1)))


# --- saving for transformers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(ZOO))
def test_saved_model_loads_in_transformers_with_identical_outputs(tmp_path, task):
    hf = write_checkpoint(tmp_path / "hf", task)
    model = ZOO[task].from_pretrained(tmp_path / "hf")
    model.save_pretrained(tmp_path / "zoo")
    assert sorted(os.listdir(tmp_path / "zoo")) == ["config.json", "model.safetensors"]
    assert json.loads((tmp_path / "zoo" / "config.json").read_text())["architectures"] == [type(model).__name__]
    again, info = type(hf).from_pretrained(tmp_path / "zoo", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    batch = make_batch({})
    assert_outputs_equal(outputs(again.eval(), batch), outputs(hf, batch))


@pytest.mark.parametrize("task", ["masked-lm", "sequence-classification"])
def test_from_config_model_saved_by_zoo_loads_in_transformers(tmp_path, task):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=90, hidden_size=48, num_attention_heads=6, num_hidden_layers=2, intermediate_size=40,
                        max_position_embeddings=64, hidden_act="gelu_new", num_labels=4)
    model = ZOO[task].from_config(config).eval()
    model.save_pretrained(tmp_path)
    hf = getattr(transformers, type(model).__name__).from_pretrained(tmp_path).eval()
    batch = make_batch({"hidden_size": 48})
    assert_outputs_equal(outputs(model, batch), outputs(hf, batch))


def test_sharded_save_writes_an_index_that_zoo_and_transformers_load(tmp_path):
    hf = write_checkpoint(tmp_path / "hf", "pretraining")
    model = BertForPreTraining.from_pretrained(tmp_path / "hf")
    model.save_pretrained(tmp_path / "zoo", max_shard_size="50KB")
    shards = sorted(p.name for p in (tmp_path / "zoo").glob("model-*.safetensors"))
    index = json.loads((tmp_path / "zoo" / "model.safetensors.index.json").read_text())
    assert len(shards) > 1 and sorted(set(index["weight_map"].values())) == shards
    assert not (tmp_path / "zoo" / "model.safetensors").exists()
    tensors = {k: v for shard in shards for k, v in load_file(tmp_path / "zoo" / shard).items()}
    assert set(tensors) == set(index["weight_map"])
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in tensors.values())
    for shard in shards:
        shard_tensors = load_file(tmp_path / "zoo" / shard)
        assert len(shard_tensors) == 1 or sum(t.numel() * t.element_size() for t in shard_tensors.values()) <= 50_000
    batch = make_batch({})
    expected = outputs(hf, batch)
    assert_outputs_equal(outputs(BertForPreTraining.from_pretrained(tmp_path / "zoo"), batch), expected)
    assert_outputs_equal(outputs(transformers.BertForPreTraining.from_pretrained(tmp_path / "zoo").eval(), batch), expected)


def test_saving_over_an_earlier_save_removes_its_stale_weight_files(tmp_path):
    write_checkpoint(tmp_path / "hf", "masked-lm")
    model = BertForMaskedLM.from_pretrained(tmp_path / "hf")
    out = tmp_path / "out"
    out.mkdir()
    (out / "vocab.txt").write_text("keep me")
    (out / "model-notes.safetensors.txt").write_text("not a shard")

    def weight_files() -> list[str]:
        return sorted(p.name for p in out.iterdir() if p.name not in ("vocab.txt", "model-notes.safetensors.txt", "config.json"))

    model.save_pretrained(out, max_shard_size="20KB")
    many = weight_files()
    model.save_pretrained(out, max_shard_size="50KB")
    fewer = weight_files()
    assert len(many) > len(fewer) > 2 and not set(many) & set(fewer) - {"model.safetensors.index.json"}
    model.save_pretrained(out)
    assert weight_files() == ["model.safetensors"]
    assert (out / "vocab.txt").read_text() == "keep me" and (out / "model-notes.safetensors.txt").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    batch = make_batch({})
    assert_outputs_equal(outputs(BertForMaskedLM.from_pretrained(out), batch), outputs(model, batch))


def test_saving_into_the_folder_the_model_was_loaded_from(tmp_path):
    """The loaded weights may map the very files being replaced: saving over them must neither corrupt the model in
    memory nor the files."""
    hf = write_checkpoint(tmp_path, "masked-lm")
    batch = make_batch({})
    expected = outputs(hf, batch)
    model = BertForMaskedLM.from_pretrained(tmp_path)
    for max_shard_size in ("20KB", "5GB", "50KB"):
        model.save_pretrained(tmp_path, max_shard_size=max_shard_size)
        assert_outputs_equal(outputs(model, batch), expected)
        model = BertForMaskedLM.from_pretrained(tmp_path)
        assert_outputs_equal(outputs(model, batch), expected)
    assert_outputs_equal(outputs(transformers.BertForMaskedLM.from_pretrained(tmp_path).eval(), batch), expected)


# --- bad input changes nothing on disk ------------------------------------------------------------------------------------------


def _corrupt(folder: Path, how: str) -> None:
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    if how == "config-not-json":
        (folder / "config.json").write_text("{ this is not json")
    elif how == "config-a-list":
        (folder / "config.json").write_text("[1, 2]")
    elif how == "config-wrong-type":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": "two"}))
    elif how == "config-other-model-type":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    elif how == "truncated-safetensors":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "safetensors-missing-last-bytes":
        weights.write_bytes(data[:-3])
    elif how == "corrupt-safetensors-header":
        weights.write_bytes(data[:8] + b"}" * 16 + data[24:])
    elif how == "no-weights":
        weights.unlink()
    elif how == "index-without-weight-map":
        weights.unlink()
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    elif how == "index-naming-a-missing-shard":
        weights.rename(folder / "model-00001-of-00002.safetensors")
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
            "embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors",
            "pooler.dense.weight": "model-00002-of-00002.safetensors"}}))
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "error", "message"),
    [
        ("config-not-json", ConfigError, "config.json is not valid JSON"),
        ("config-a-list", ConfigError, "config.json holds a JSON list, expected an object"),
        ("config-wrong-type", ConfigError, r"config\.json: BertConfig field 'num_hidden_layers' is 'two' \(a str\)"),
        ("config-other-model-type", ConfigError, "reads model_type 'bert' but the config says 'gpt2'"),
        ("truncated-safetensors", WeightsError, "model.safetensors is not a readable safetensors file.*truncated or corrupt"),
        ("safetensors-missing-last-bytes", WeightsError, "model.safetensors is not a readable safetensors file"),
        ("corrupt-safetensors-header", WeightsError, "model.safetensors is not a readable safetensors file"),
        ("no-weights", ModelFileNotFoundError, "has no weights: none of model.safetensors, .*pytorch_model.bin"),
        ("index-without-weight-map", WeightsError, "has no 'weight_map'"),
        ("index-naming-a-missing-shard", ModelFileNotFoundError, "has no model-00002-of-00002.safetensors"),
    ],
)
def test_bad_files_are_clear_errors_and_change_nothing_on_disk(tmp_path, how, error, message):
    write_checkpoint(tmp_path, "base")
    _corrupt(tmp_path, how)
    before = snapshot(tmp_path)
    with pytest.raises(error, match=message):
        BertModel.from_pretrained(tmp_path)
    assert snapshot(tmp_path) == before


def test_missing_folder_is_a_clear_error_and_is_not_created(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        BertModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):  # zoo's error is also the builtin one
        BertModel.from_pretrained(str(tmp_path / "nowhere"))
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ModelFileNotFoundError, match="is a file; from_pretrained expects the folder"):
        BertModel.from_pretrained(tmp_path / "a-file")


def test_folder_without_config_is_a_clear_error(tmp_path):
    write_checkpoint(tmp_path, "base")
    (tmp_path / "config.json").unlink()
    with pytest.raises(ModelFileNotFoundError, match="has no config.json"):
        BertModel.from_pretrained(tmp_path)


# --- from_config and small pieces -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(ZOO))
def test_from_config_gives_a_working_randomly_initialised_model(task):
    config = BertConfig(vocab_size=90, hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=37,
                        max_position_embeddings=64, initializer_range=0.05)
    torch.manual_seed(0)
    model = ZOO[task].from_config(config)
    torch.manual_seed(0)
    same = ZOO[task].from_config(config)
    assert all(p.device.type == "cpu" for p in model.parameters())
    for (name, p), q in zip(model.named_parameters(), same.parameters()):
        assert torch.equal(p, q), name  # seeded init is reproducible
    embeddings = model.bert.embeddings if task != "base" else model.embeddings
    assert torch.equal(embeddings.word_embeddings.weight[0], torch.zeros(32))  # padding row
    assert torch.equal(embeddings.LayerNorm.weight, torch.ones(32)) and torch.equal(embeddings.LayerNorm.bias, torch.zeros(32))
    assert 0.04 < embeddings.word_embeddings.weight[1:].std().item() < 0.06
    out = outputs(model.eval(), make_batch({}))
    assert all(torch.isfinite(t).all() for t in out.to_tuple())
    half = ZOO[task].from_config(config, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16


def test_model_output_reads_like_transformers_outputs(tmp_path):
    write_checkpoint(tmp_path, "sequence-classification")
    out = outputs(BertForSequenceClassification.from_pretrained(tmp_path), make_batch({}))
    assert isinstance(out, ModelOutput)
    assert out.keys() == ["logits"] and "logits" in out and "loss" not in out
    assert out[0] is out.logits and out["logits"] is out.logits and out.to_tuple() == (out.logits,)


def test_model_needs_its_own_config_class():
    with pytest.raises(TypeError, match="BertModel needs a BertConfig"):
        BertModel(zoo.Config())


@pytest.mark.parametrize(("text", "size"), [("50KB", 50_000), ("5GB", 5 * 10**9), ("2GiB", 2 * 1024**3),
                                            ("1.5MB", 1_500_000), ("100", 100), (1234, 1234), (" 3 kib ", 3072)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_parse_size_refuses_nonsense():
    with pytest.raises(ValueError, match="cannot read size 'lots'"):
        parse_size("lots")


def test_num_parameters_matches_transformers(tmp_path):
    hf = write_checkpoint(tmp_path, "masked-lm")
    model = BertForMaskedLM.from_pretrained(tmp_path)
    assert model.num_parameters() == hf.num_parameters()
    assert isinstance(model, PreTrainedModel)
