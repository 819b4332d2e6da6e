"""Loading checks what it can before it allocates: the device, the config against the weights' headers (shapes,
layer counts, dtypes), and that building the model touches no real memory. The dtype a model loads in by default
(``dtype="auto"``, as transformers 5) is compared with transformers' on the same files, and every tensor is read
once: as the mapped file when it is stored in the dtype asked for, else straight into the converted tensor.

Checkpoints are small random models written by transformers at test time (tests/plugins); every refusal must leave
the folder as it was and take milliseconds, not a model's worth of memory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import zoo
from tests.checkpoints import assert_outputs_equal
from tests.image_checkpoints import make_resnet
from tests.plugins.test_bert import make_batch, write_checkpoint
from tests.plugins.test_gpt2 import make_gpt2
from zoo.configuration import Config
from zoo.errors import ConfigError, ShapeMismatchError, WeightsError, ZooError
from zoo.modeling import PreTrainedModel
from zoo.plugins.bert.modeling import BertForMaskedLM, BertForSequenceClassification, BertModel


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def edit_config(folder: Path, **fields) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **fields}))


class RealAllocations(TorchDispatchMode):
    """Records every operator that produces a tensor off the meta device, with its largest output's size."""

    def __init__(self) -> None:
        super().__init__()
        self.real: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else [out]
        for t in outs:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self.real.append((str(func), t.numel()))
        return out


# --- building allocates nothing ------------------------------------------------------------------------------------------------


def test_a_config_that_does_not_match_its_weights_is_refused_before_anything_is_allocated(tmp_path):
    """10^7 x 4096 embeddings are 160 GB if built for real (today's nn.Embedding allocated before moving to meta)."""
    write_checkpoint(tmp_path, "base")
    edit_config(tmp_path, vocab_size=10**7, hidden_size=4096, num_attention_heads=64, intermediate_size=16384)
    before = snapshot(tmp_path)
    start = time.perf_counter()
    with RealAllocations() as seen, pytest.raises(ShapeMismatchError) as caught:
        BertModel.from_pretrained(tmp_path)
    assert time.perf_counter() - start < 5
    assert isinstance(caught.value, ConfigError)
    assert "vocab_size=10000000 does not match the weights" in str(caught.value)
    assert "'embeddings.word_embeddings.weight' of shape (90, 32), where this config needs (10000000, 4096)" in str(caught.value)
    assert max((n for _, n in seen.real), default=0) < 10**6, sorted(seen.real, key=lambda r: -r[1])[:3]
    assert snapshot(tmp_path) == before


BIG = {  # model_type -> (task, config fields): each a few hundred GB if built for real
    "bert": ("masked-lm", dict(vocab_size=10**7, hidden_size=4096, num_attention_heads=64, num_hidden_layers=2)),
    "gpt2": ("causal-lm", dict(vocab_size=10**7, n_embd=4096, n_head=32, n_layer=2)),
    "resnet": ("image-classification", dict(hidden_sizes=[2**16] * 2, depths=[2, 2], num_labels=10**5)),
}


@pytest.mark.parametrize("model_type", list(BIG))
def test_empty_weights_builds_every_tensor_on_meta_without_touching_memory(model_type):
    from zoo.modeling import empty_weights

    task, fields = BIG[model_type]
    config = zoo.AutoConfig.for_model(model_type, **fields)
    cls = zoo.get_registry().architecture(model_type).model_class(task)
    start = time.perf_counter()
    with RealAllocations() as seen, empty_weights():
        model = cls(config)
    assert time.perf_counter() - start < 5
    assert seen.real == []
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {"meta"}


# --- the config against the weights ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("layers", "held"), [(4, r"2 blocks 'bert\.encoder\.layer\.N' \(0-1\) where this config needs 4 \(0-3\)"),
                                              (1, r"2 blocks 'bert\.encoder\.layer\.N' \(0-1\) where this config needs 1 \(0\)")])
def test_another_number_of_layers_than_the_weights_hold_is_refused(tmp_path, layers, held):
    write_checkpoint(tmp_path, "masked-lm")
    edit_config(tmp_path, num_hidden_layers=layers)
    before = snapshot(tmp_path)
    with pytest.raises(ShapeMismatchError, match=f"config\\.json: num_hidden_layers={layers} does not match the weights: "
                                                 f"model\\.safetensors holds {held}; set num_hidden_layers to 2"):
        zoo.AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("layout", ["sharded-safetensors", "bin"])
def test_every_weights_layout_is_checked_against_the_config_before_loading(tmp_path, layout):
    hf = write_checkpoint(tmp_path / "hf", "base")
    folder = tmp_path / layout
    if layout == "bin":
        folder.mkdir()
        torch.save(hf.state_dict(), folder / "pytorch_model.bin")
        (folder / "config.json").write_bytes((tmp_path / "hf" / "config.json").read_bytes())
        name = "pytorch_model.bin"
    else:
        hf.save_pretrained(folder, max_shard_size="20KB")
        name = "model-0000"
    edit_config(folder, intermediate_size=40)
    with pytest.raises(ShapeMismatchError, match=f"intermediate_size=40 does not match the weights: {name}.* of shape "
                                                 f"\\((37, 32|32, 37)\\), where this config needs \\((40, 32|32, 40)\\); "
                                                 f"set intermediate_size to 37"):
        BertModel.from_pretrained(folder)
    edit_config(folder, intermediate_size=37, num_hidden_layers=3)
    with pytest.raises(ShapeMismatchError, match="num_hidden_layers=3 does not match the weights"):
        BertModel.from_pretrained(folder)


def test_layer_count_of_a_base_checkpoint_under_a_head_and_of_gpt2(tmp_path):
    write_checkpoint(tmp_path / "bert", "base")  # keys without the "bert." prefix
    edit_config(tmp_path / "bert", num_hidden_layers=3)
    with pytest.raises(ShapeMismatchError, match=r"num_hidden_layers=3 .* 2 blocks 'encoder\.layer\.N'"):
        BertForSequenceClassification.from_pretrained(tmp_path / "bert")
    make_gpt2(tmp_path / "gpt2", "causal-lm")
    edit_config(tmp_path / "gpt2", n_layer=1)
    with pytest.raises(ShapeMismatchError, match=r"n_layer=1 does not match the weights: .*holds 2 blocks 'transformer\.h\.N'"):
        zoo.AutoModelForCausalLM.from_pretrained(tmp_path / "gpt2")


def test_ignore_mismatched_sizes_loads_what_matches_and_says_so(tmp_path, caplog):
    write_checkpoint(tmp_path, "base")
    edit_config(tmp_path, num_hidden_layers=3)
    caplog.set_level(logging.WARNING)
    model, info = BertModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True, output_loading_info=True)
    assert len(model.encoder.layer) == 3 and any("encoder.layer.2" in k for k in info["missing_keys"])
    assert any("holds 2 blocks" in r.getMessage() for r in caplog.records)


def test_the_field_is_named_even_when_the_shape_is_a_multiple_of_it(tmp_path):
    make_gpt2(tmp_path, "causal-lm")
    state = load_file(tmp_path / "model.safetensors")
    key = "transformer.h.0.attn.c_attn.weight"  # (n_embd, 3 x n_embd)
    state[key] = state[key][:, :48].contiguous()
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ShapeMismatchError, match=r"n_embd=32 \(x3\) does not match the weights: .*'transformer\.h\.0\.attn\."
                                                 r"c_attn\.weight' of shape \(32, 48\), where this config needs \(32, 96\); "
                                                 r"set n_embd to 16"):
        zoo.AutoModelForCausalLM.from_pretrained(tmp_path)


# --- dtypes --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.int16, torch.int64, torch.bool, torch.uint8])
def test_an_integer_tensor_for_a_float_parameter_is_a_weights_error_naming_it(tmp_path, dtype):
    write_checkpoint(tmp_path, "base")
    state = load_file(tmp_path / "model.safetensors")
    state["pooler.dense.bias"] = (state["pooler.dense.bias"] * 100).to(dtype)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    before = snapshot(tmp_path)
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(WeightsError, match=f"model\\.safetensors: tensor 'pooler\\.dense\\.bias' is {name}, but "
                                           f"'pooler\\.dense\\.bias' of BertModel needs a floating-point tensor .*float32"):
        BertModel.from_pretrained(tmp_path)
    assert snapshot(tmp_path) == before


def test_float_tensors_of_any_precision_load_into_float_parameters(tmp_path):
    hf = write_checkpoint(tmp_path, "base")
    state = load_file(tmp_path / "model.safetensors")
    state = {k: v.to(torch.float64) if i % 2 else v.half().float() for i, (k, v) in enumerate(state.items())}
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = BertModel.from_pretrained(tmp_path)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with torch.no_grad():
        out = model(**make_batch({})).last_hidden_state
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, hf(**make_batch({})).last_hidden_state, atol=5e-2, rtol=0)


class _TinyConfig(Config):
    model_type = "tiny-buffers"
    size: int = 4


class _TinyModel(PreTrainedModel):
    """A Linear and an integer buffer (like BERT's position_ids, BatchNorm's num_batches_tracked)."""

    config_class = _TinyConfig

    def __init__(self, config: _TinyConfig) -> None:
        super().__init__(config)
        self.proj = nn.Linear(config.size, config.size)
        self.register_buffer("position_ids", torch.arange(config.size))
        self.post_init()


def test_integer_buffers_take_integer_tensors_and_refuse_floats(tmp_path):
    _TinyConfig().save_pretrained(tmp_path)
    weights = {"proj.weight": torch.eye(4), "proj.bias": torch.zeros(4)}
    save_file({**weights, "position_ids": torch.arange(4, dtype=torch.int32) + 1}, tmp_path / "model.safetensors")
    model = _TinyModel.from_pretrained(tmp_path)
    assert model.position_ids.dtype == torch.int64 and model.position_ids.tolist() == [1, 2, 3, 4]
    save_file({**weights, "position_ids": torch.arange(4, dtype=torch.float32)}, tmp_path / "model.safetensors")
    with pytest.raises(WeightsError, match="tensor 'position_ids' is float32, but 'position_ids' of _TinyModel needs an "
                                           "integer tensor like the model's int64"):
        _TinyModel.from_pretrained(tmp_path)


def test_buffers_a_checkpoint_lacks_get_their_module_init(tmp_path):
    """Buffers are built on meta too: a running_mean the file lacks gets BatchNorm's own value, and the running_var
    and weights the file has are kept."""
    hf = make_resnet(tmp_path, "basic")
    state = load_file(tmp_path / "model.safetensors")
    key = next(k for k in state if k.endswith("running_mean"))
    kept = state[key.replace("running_mean", "running_var")]
    del state[key]
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = zoo.AutoModelForImageClassification.from_pretrained(tmp_path)
    owner = model.get_submodule(key.rsplit(".", 1)[0])
    assert torch.equal(owner.running_mean, torch.zeros_like(owner.running_mean))
    assert torch.equal(owner.running_var, kept) and not torch.equal(owner.weight, torch.ones_like(owner.weight))
    assert all(not t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert hf is not None


# --- dtype="auto", the default ---------------------------------------------------------------------------------------------


def record_dtype(folder: Path, **record: str) -> None:
    """config.json recording exactly ``record`` (``dtype=...``, ``torch_dtype=...``, or nothing)."""
    config = json.loads((folder / "config.json").read_text())
    config = {k: v for k, v in config.items() if k not in ("dtype", "torch_dtype")}
    (folder / "config.json").write_text(json.dumps({**config, **record}))


def store_as(folder: Path, dtype_of) -> None:
    """Rewrite every safetensors file of ``folder`` with each float tensor in ``dtype_of(key)``."""
    for path in sorted(folder.glob("*.safetensors")):
        state = load_file(path)
        save_file({k: v.to(dtype_of(k)).contiguous() if v.is_floating_point() else v for k, v in state.items()},
                  path, metadata={"format": "pt"})


def assert_same_weights(ours: nn.Module, theirs: nn.Module) -> None:
    """Every parameter of ours equals transformers' of that name, bit for bit and in the same dtype."""
    reference = theirs.state_dict()
    for name, param in ours.named_parameters():
        assert param.dtype == reference[name].dtype and torch.equal(param, reference[name]), name


@pytest.mark.parametrize(("record", "stored"), [
    ({"dtype": "bfloat16"}, torch.float32),                          # the config's record, not the tensors' dtype
    ({"torch_dtype": "float16"}, torch.float32),                     # its older name
    ({"dtype": "float16", "torch_dtype": "bfloat16"}, torch.float32),  # dtype wins over torch_dtype
    ({}, torch.bfloat16),                                            # no record: the dtype the weights have
    ({}, torch.float16),
    ({}, torch.float32),
    ({"dtype": "bfloat16"}, torch.bfloat16),
])
def test_no_dtype_is_auto_as_in_transformers(tmp_path, record, stored):
    write_checkpoint(tmp_path, "masked-lm")
    store_as(tmp_path, lambda key: stored)
    record_dtype(tmp_path, **record)
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path)
    expected = getattr(torch, next(iter(record.values()))) if record else stored
    assert theirs.dtype == expected
    for model in (BertForMaskedLM.from_pretrained(tmp_path), zoo.AutoModelForMaskedLM.from_pretrained(tmp_path),
                  BertForMaskedLM.from_pretrained(tmp_path, dtype="auto")):
        assert {p.dtype for p in model.parameters()} == {expected}
        assert_same_weights(model, theirs)


def test_auto_without_a_record_takes_the_first_float_tensor_in_sorted_key_order(tmp_path):
    """A file mixing dtypes: transformers reads the first float tensor by sorted name (safe_open's order), not
    the header's order (which lists float32 tensors first); integer tensors and float8 ones are passed over."""
    write_checkpoint(tmp_path, "masked-lm")
    record_dtype(tmp_path)
    keys = sorted(load_file(tmp_path / "model.safetensors"))
    store_as(tmp_path, lambda key: torch.float16 if key == keys[0] else torch.float32 if key == keys[-1] else torch.bfloat16)
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path)
    ours = BertForMaskedLM.from_pretrained(tmp_path)
    assert ours.dtype == theirs.dtype == torch.float16 and {p.dtype for p in ours.parameters()} == {torch.float16}
    assert_same_weights(ours, theirs)
    state = load_file(tmp_path / "model.safetensors")  # first by name now an int tensor and a float8 one
    save_file({"a.step": torch.tensor([3]), "a.scale": torch.ones(2).to(torch.float8_e4m3fn), **state},
              tmp_path / "model.safetensors", metadata={"format": "pt"})
    assert BertForMaskedLM.from_pretrained(tmp_path).dtype == transformers.BertForMaskedLM.from_pretrained(tmp_path).dtype


def test_auto_on_a_sharded_checkpoint_reads_the_index_metadata_then_the_first_shard_by_name(tmp_path):
    write_checkpoint(tmp_path / "one", "masked-lm")
    BertForMaskedLM.from_pretrained(tmp_path / "one").save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 2
    record_dtype(tmp_path)
    in_first = set(load_file(shards[0]))
    store_as(tmp_path, lambda key: torch.float16 if key in in_first else torch.bfloat16)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    # the weight map opens with a key of another shard: the first shard is the first by name, not by the map
    index["weight_map"] = dict(sorted(index["weight_map"].items(), key=lambda item: item[0] in in_first))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    for dtype in (None, "bfloat16"):
        if dtype:
            index["metadata"]["dtype"] = dtype
            (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
        theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path)
        ours = BertForMaskedLM.from_pretrained(tmp_path)
        assert ours.dtype == theirs.dtype == (torch.bfloat16 if dtype else torch.float16)
        assert_same_weights(ours, theirs)


def test_an_explicit_dtype_wins_and_converts_exactly(tmp_path):
    write_checkpoint(tmp_path, "masked-lm")
    store_as(tmp_path, lambda key: torch.bfloat16)
    stored = load_file(tmp_path / "model.safetensors")
    for asked in (torch.float32, "float32", "torch.float32"):
        model = BertForMaskedLM.from_pretrained(tmp_path, dtype=asked)
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        for name, param in model.named_parameters():  # bf16 -> float32 is exact
            assert torch.equal(param, stored[name].float()), name
    assert BertForMaskedLM.from_pretrained(tmp_path, torch_dtype=torch.float16).dtype == torch.float16
    assert zoo.AutoModelForMaskedLM.from_pretrained(tmp_path, torch_dtype="float32").dtype == torch.float32
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path, dtype=torch.float16)
    assert_same_weights(BertForMaskedLM.from_pretrained(tmp_path, dtype=torch.float16), theirs)  # bf16 -> fp16 rounding


def test_from_config_builds_in_the_dtype_the_config_records_as_transformers(tmp_path):
    write_checkpoint(tmp_path, "base")
    for record, expected in (({"dtype": "bfloat16"}, torch.bfloat16), ({"torch_dtype": "float16"}, torch.float16),
                             ({}, torch.float32)):
        record_dtype(tmp_path, **record)
        theirs = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(tmp_path))
        config = zoo.AutoConfig.from_pretrained(tmp_path)
        assert zoo.AutoModel.from_config(config).dtype == BertModel.from_config(config).dtype == theirs.dtype == expected
        assert BertModel.from_config(config, dtype=torch.float32).dtype == torch.float32
    assert BertModel.from_config(zoo.AutoConfig.from_pretrained(tmp_path), torch_dtype="bfloat16").dtype == torch.bfloat16


def test_a_bf16_checkpoint_runs_through_pipeline_in_bf16_as_transformers(tmp_path):
    from tests.pipelines.conftest import assert_records_equal, labels_config, make_checkpoint

    hf = make_checkpoint(tmp_path, "sequence-classification", seed=3, **labels_config(["neg", "neutral", "pos"]))
    hf.to(torch.bfloat16).save_pretrained(tmp_path)
    texts = ["i love python.", "hate bugs", "hello world, the café is naïve and lovely"]
    ours, theirs = zoo.pipeline("text-classification", model=str(tmp_path)), transformers.pipeline(
        "text-classification", model=str(tmp_path))
    assert ours.model.dtype == theirs.model.dtype == torch.bfloat16
    assert_records_equal(ours(texts, top_k=None), theirs(texts, top_k=None), atol=2e-2)
    assert zoo.pipeline("text-classification", model=str(tmp_path), dtype="float32").model.dtype == torch.float32


# --- reads: each tensor once, mapped or converted --------------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch):
    """Every tensor read during loading, as ``(checkpoint key, "read" | "convert", dtype, device)``."""
    calls: list[tuple] = []
    real = zoo.modeling.open_checkpoint

    def spying(files, stack):
        def watch(entry):
            def read():
                calls.append((entry.key, "read", None, None))
                return entry.read()

            def convert(dtype, device):
                calls.append((entry.key, "convert", dtype, device))
                return entry.convert(dtype, device)
            return dataclasses.replace(entry, read=read, convert=convert if entry.convert is not None else None)
        return {key: watch(entry) for key, entry in real(files, stack).items()}

    monkeypatch.setattr(zoo.modeling, "open_checkpoint", spying)
    return calls


def test_a_tensor_in_the_dtype_asked_is_the_mapped_file_and_any_other_is_read_once_converted(tmp_path, reads):
    make_gpt2(tmp_path)
    store_as(tmp_path, lambda key: torch.bfloat16)
    record_dtype(tmp_path, dtype="bfloat16")
    stored = load_file(tmp_path / "model.safetensors")
    size = (tmp_path / "model.safetensors").stat().st_size
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert sorted(key for key, *_ in reads) == sorted(stored) and {how for _, how, *_ in reads} == {"read"}
    # not copies: views into the one mapping of the whole file
    assert {p.untyped_storage().nbytes() for p in model.parameters()} == {size}
    reads.clear()
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert sorted(key for key, *_ in reads) == sorted(stored)
    assert {(how, dtype, device) for _, how, dtype, device in reads} == {("convert", torch.float32, torch.device("cpu"))}
    assert all(torch.equal(p, stored[n].float()) for n, p in model.named_parameters() if n in stored)


def test_a_tensor_larger_than_one_read_is_converted_slice_by_slice(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo.checkpoint, "CONVERT_CHUNK_BYTES", 1000)  # 500 bf16 values a slice
    hf = make_gpt2(tmp_path)
    store_as(tmp_path, lambda key: torch.bfloat16)
    stored = load_file(tmp_path / "model.safetensors")
    assert stored["transformer.wte.weight"].numel() % 500 and stored["transformer.wte.weight"].numel() > 3 * 500
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert all(torch.equal(p, stored[n].float()) for n, p in model.named_parameters() if n in stored)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, dtype=torch.float32)
    assert_same_weights(model, theirs)
    assert hf is not None


def test_a_tied_copy_in_the_file_is_not_read_and_stands_in_for_a_missing_source(tmp_path, reads):
    """GPT-2's lm_head is its token embeddings: read once. A file holding the lm_head but not the embeddings loads
    it as both, as transformers' tie_weights swaps the pair."""
    make_gpt2(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    save_file({**state, "lm_head.weight": state["transformer.wte.weight"].clone()}, tmp_path / "model.safetensors",
              metadata={"format": "pt"})
    model = zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert "lm_head.weight" not in [key for key, *_ in reads]
    assert model.lm_head.weight is model.transformer.wte.weight
    state["lm_head.weight"] = state.pop("transformer.wte.weight")
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ours = zoo.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert ours.lm_head.weight is ours.transformer.wte.weight
    assert torch.equal(ours.transformer.wte.weight, theirs.transformer.wte.weight)
    batch = {"input_ids": torch.tensor([[5, 7, 9, 11]])}
    with torch.no_grad():
        assert_outputs_equal(ours(**batch), theirs(**batch), keys=["logits"])


# --- devices -------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def cpu_only(monkeypatch):
    """This machine as one without CUDA or MPS, whatever it really has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize(("device", "message"), [
    ("cuda", "device 'cuda' was asked for, but CUDA is not available on this machine \\(available here: cpu\\); use "
             "device='cpu' or device='auto'"),
    ("cuda:1", "device 'cuda:1' was asked for, but CUDA is not available"),
    (torch.device("cuda", 0), "CUDA is not available"),
    ("mps", "device 'mps' was asked for, but MPS \\(Apple GPU\\) is not available on this machine \\(available here: cpu\\)"),
    ("cuda:x", "device 'cuda:x' is not a device name torch understands; use 'cpu', 'cuda', 'cuda:1', 'mps' or 'auto'"),
    ("tpu", "device 'tpu' is not a device name torch understands"),
    ("meta", "device 'meta' holds no data"),
])
def test_an_unavailable_device_says_so_and_what_is_available(tmp_path, cpu_only, device, message):
    write_checkpoint(tmp_path, "base")
    before = snapshot(tmp_path)
    for load in (BertModel.from_pretrained, zoo.AutoModel.from_pretrained):
        with pytest.raises(ZooError, match=message) as caught:
            load(tmp_path, device=device)
        assert type(caught.value).__name__ == "DeviceError"
        assert "corrupt" not in str(caught.value) and "delete" not in str(caught.value)
    assert snapshot(tmp_path) == before


def test_device_is_checked_before_any_file_is_read(tmp_path, cpu_only):
    with pytest.raises(ZooError, match="CUDA is not available"):
        zoo.AutoModel.from_pretrained(tmp_path / "does-not-exist", device="cuda")


def test_a_cuda_index_past_the_devices_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    write_checkpoint(tmp_path, "base")
    with pytest.raises(ZooError, match=r"device 'cuda:1' was asked for, but this machine has 1 CUDA device "
                                                     r"\(available here: cpu, cuda:0\)"):
        BertModel.from_pretrained(tmp_path, device="cuda:1")


def test_device_auto_picks_what_the_machine_has(tmp_path, cpu_only):
    hf = write_checkpoint(tmp_path, "base")
    model = zoo.AutoModel.from_pretrained(tmp_path, device="auto")
    assert model.device == torch.device("cpu")
    assert BertModel.from_pretrained(tmp_path, device="auto").device == torch.device("cpu")
    with torch.no_grad():
        assert_outputs_equal(model(**make_batch({})), hf(**make_batch({})))


def test_corrupt_wording_is_kept_for_corrupt_files(tmp_path):
    write_checkpoint(tmp_path, "base")
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:-3])
    with pytest.raises(WeightsError, match="model.safetensors is not a readable safetensors file .*truncated or corrupt"):
        BertModel.from_pretrained(tmp_path, device="auto")
    assert issubclass(zoo.errors.DeviceError, ZooError)
