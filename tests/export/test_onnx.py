"""ONNX export: the exported graphs run in ONNX Runtime give zoo's outputs, at several batch sizes and lengths.

Every checkpoint is written by transformers (small random configs), exported once per module from its folder
(the default task: the checkpoint's own head), and compared with the zoo model loaded from the same folder within
1e-4. GPT-2's KV-cache graph runs a whole greedy loop in ONNX Runtime, which must give ``model.generate``'s ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import zoo
from tests.checkpoints import make_bert
from tests.export.conftest import (IMAGE_BATCHES, TEXT_SIZES, assert_all_close, make_distilbert, read_meta, registry,
                                   session, text_inputs, write_sentence_transformers_files, zoo_outputs)
from tests.image_checkpoints import make_resnet
from tests.pipelines.conftest import make_roberta
from tests.plugins.test_gpt2 import CONFIGS as GPT2_CONFIGS
from tests.plugins.test_gpt2 import PAD, make_batch, make_gpt2
from zoo.errors import ExportError, MissingDependencyError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from zoo.export import greedy_generate, load_metadata, to_onnx  # noqa: E402


@dataclass
class Exported:
    source: Path
    file: Path
    model: Any
    meta: dict[str, Any]
    session: Any

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.meta["outputs"]]


def export(root: Path, auto: Any, entry_points: bool = False, **kwargs: Any) -> Exported:
    with registry(entry_points):
        file = to_onnx(root / "src", root / "out", **kwargs)
        model = auto.from_pretrained(root / "src")
    return Exported(root / "src", file, model, read_meta(file.parent), session(file))


def run(exported: Exported, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    return exported.session.run(None, inputs)


# --- BERT: sequence classification -------------------------------------------------------------------------------------

LABELS = {0: "negative", 1: "neutral", 2: "positive"}


@pytest.fixture(scope="module")
def bert_cls(tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("bert-cls")
    make_bert(root / "src", "sequence-classification", seed=1, num_labels=3, id2label=LABELS,
              label2id={v: k for k, v in LABELS.items()})
    return export(root, zoo.AutoModelForSequenceClassification)


@pytest.mark.parametrize("batch, length", TEXT_SIZES)
def test_bert_classifier_matches_zoo(bert_cls, batch, length):
    inputs = text_inputs(bert_cls.model.config.vocab_size, batch, length, seed=batch * 100 + length, token_types=True)
    assert_all_close(run(bert_cls, inputs), zoo_outputs(bert_cls.model, inputs, ["logits"]), ["logits"])


def test_bert_classifier_metadata_says_what_an_app_needs(bert_cls):
    meta = bert_cls.meta
    assert meta["format"] == "onnx" and meta["opset"] >= 18 and meta["file"] == "model.onnx"
    assert (meta["task"], meta["model_type"], meta["architecture"]) == (
        "sequence-classification", "bert", "BertForSequenceClassification")
    assert meta["inputs"] == [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]}
                              for n in ("input_ids", "attention_mask", "token_type_ids")]
    assert meta["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}]
    assert meta["dynamic_axes"] == {"batch": {"min": 1, "max": None}, "sequence": {"min": 1, "max": 64}}
    post = meta["postprocessing"]
    assert post["labels"] == ["negative", "neutral", "positive"] and post["activation"] == "softmax"
    assert load_metadata(bert_cls.file) == meta == load_metadata(bert_cls.file.parent)
    # the ONNX graph itself has the same names and symbolic axes
    got = [(i.name, i.shape) for i in bert_cls.session.get_inputs()]
    assert got == [(i["name"], i["shape"]) for i in meta["inputs"]]


def test_bert_export_folder_holds_the_tokenizer_and_config(bert_cls):
    out = bert_cls.file.parent
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "zoo_export.json"):
        assert (out / name).is_file(), name
    with registry():
        exported_tok = zoo.AutoTokenizer.from_pretrained(out)
        source_tok = zoo.AutoTokenizer.from_pretrained(bert_cls.source)
        assert zoo.AutoConfig.from_pretrained(out).to_dict() == bert_cls.model.config.to_dict()
    texts = ["hello world, i love python", "the bugs"]
    ours = exported_tok(texts, padding=True, return_tensors="np")
    assert {k: v.tolist() for k, v in ours.items()} == {k: v.tolist() for k, v in
                                                       source_tok(texts, padding=True, return_tensors="np").items()}
    # tokenizer output feeds the graph as it is
    logits = bert_cls.session.run(None, {k: v.astype(np.int64) for k, v in ours.items()})[0]
    assert_all_close([logits], zoo_outputs(bert_cls.model, {k: v.astype(np.int64) for k, v in ours.items()},
                                           ["logits"]), ["logits"])


# --- BERT: feature extraction, pooled as sentence-transformers says ---------------------------------------------------


@pytest.fixture(scope="module")
def bert_base(tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("bert-base")
    make_bert(root / "src", "base", seed=2, hidden_act="gelu_new")
    write_sentence_transformers_files(root / "src", mode="cls", normalize=True)
    return export(root, zoo.AutoModel, task="feature-extraction")


@pytest.mark.parametrize("batch, length", TEXT_SIZES)
def test_bert_base_matches_zoo(bert_base, batch, length):
    inputs = text_inputs(bert_base.model.config.vocab_size, batch, length, seed=length, token_types=True)
    names = ["last_hidden_state", "pooler_output"]
    assert bert_base.output_names == names
    assert_all_close(run(bert_base, inputs), zoo_outputs(bert_base.model, inputs, names), names)


def test_feature_extraction_metadata_pools_as_the_repo_says(bert_base):
    meta = bert_base.meta
    assert meta["task"] == "base"
    pooling = meta["postprocessing"]["pooling"]
    assert (pooling["mode"], pooling["normalize"], pooling["from"]) == ("cls", True, "modules.json")
    out = bert_base.file.parent
    assert json.loads((out / "modules.json").read_text()) == json.loads((bert_base.source / "modules.json").read_text())
    assert (out / "1_Pooling" / "config.json").is_file() and (out / "sentence_bert_config.json").is_file()
    # the export folder alone (tokenizer + graph + the JSON's pooling) gives zoo's sentence embeddings
    from zoo.embedding import SentenceEmbedder

    sentences = ["hello world", "i love python and hate bugs", "the"]
    with registry():
        expected = SentenceEmbedder(str(bert_base.source)).encode(sentences).numpy()
        tok = zoo.AutoTokenizer.from_pretrained(out)
    batch = {k: v.astype(np.int64) for k, v in tok(sentences, padding=True, return_tensors="np").items()}
    hidden = bert_base.session.run(["last_hidden_state"], batch)[0]
    vectors = hidden[:, 0]  # "cls"
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_plain_checkpoint_defaults_to_mean_pooling(tmp_path):
    make_bert(tmp_path / "src", "base", seed=3, num_hidden_layers=1)
    with registry():
        file = to_onnx(tmp_path / "src", tmp_path / "out.onnx")
    assert file == tmp_path / "out.onnx"
    pooling = read_meta(tmp_path)["postprocessing"]["pooling"]
    assert (pooling["mode"], pooling["normalize"]) == ("mean", False)


# --- RoBERTa: token classification (no token types) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def roberta(tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("roberta")
    make_roberta(root / "src", "token-classification", seed=4, num_labels=4)
    return export(root, zoo.AutoModelForTokenClassification)


@pytest.mark.parametrize("batch, length", TEXT_SIZES)
def test_roberta_token_classifier_matches_zoo(roberta, batch, length):
    assert [i["name"] for i in roberta.meta["inputs"]] == ["input_ids", "attention_mask"]
    inputs = text_inputs(roberta.model.config.vocab_size, batch, length, seed=7 + length, pad_id=1)
    assert_all_close(run(roberta, inputs), zoo_outputs(roberta.model, inputs, ["logits"]), ["logits"])


def test_roberta_sequence_axis_stops_where_its_positions_do(roberta):
    # max_position_embeddings 66 with pad_token_id 1: positions run 2..65, so 64 tokens at most
    assert roberta.meta["dynamic_axes"]["sequence"] == {"min": 1, "max": 64}
    assert roberta.meta["postprocessing"]["applies"] == "per token"


# --- DistilBERT: the external plugin --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distilbert(tmp_path_factory) -> Exported:
    pytest.importorskip("zoo_distilbert")
    root = tmp_path_factory.mktemp("distilbert")
    make_distilbert(root / "src", "question-answering", seed=5)
    return export(root, zoo.AutoModelForQuestionAnswering, entry_points=True)


@pytest.mark.parametrize("batch, length", TEXT_SIZES)
def test_distilbert_question_answering_matches_zoo(distilbert, batch, length):
    names = ["start_logits", "end_logits"]
    assert distilbert.output_names == names and distilbert.meta["model_type"] == "distilbert"
    inputs = text_inputs(distilbert.model.config.vocab_size, batch, length, seed=length)
    assert_all_close(run(distilbert, inputs), zoo_outputs(distilbert.model, inputs, names), names)


# --- GPT-2: the KV-cache graph ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["tiny-gelu_new", "relu-inverse-layer-idx-n_inner"])
def gpt2(request, tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("gpt2")
    make_gpt2(root / "src", "causal-lm", seed=6, **{**GPT2_CONFIGS[request.param], "pad_token_id": PAD})
    return export(root, zoo.AutoModelForCausalLM)


def test_gpt2_greedy_loop_in_onnxruntime_gives_generate_ids(gpt2):
    batch = make_batch(seed=8)  # left-padded to three lengths
    with torch.no_grad():
        expected = gpt2.model.generate(**batch, max_new_tokens=14, do_sample=False)
    got = greedy_generate(gpt2.file, batch["input_ids"].numpy(), batch["attention_mask"].numpy(), max_new_tokens=14,
                          session=gpt2.session)
    assert got.tolist() == expected.tolist()
    single = batch["input_ids"][:1]
    with torch.no_grad():
        expected = gpt2.model.generate(single, max_new_tokens=20, do_sample=False)
    assert greedy_generate(gpt2.file, single.numpy(), max_new_tokens=20).tolist() == expected.tolist()


def test_gpt2_prefill_and_step_match_the_cached_forward(gpt2):
    from zoo.export.decoder import prompt_position_ids

    model, layers = gpt2.model, gpt2.model.config.n_layer
    for batch_size, length in [(1, 1), (2, 6), (3, 9)]:
        batch = make_batch(seed=length, batch=batch_size, length=length)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        positions = prompt_position_ids(mask)
        heads, head_dim = model.config.n_head, model.config.n_embd // model.config.n_head
        empty = np.zeros((batch_size, heads, 0, head_dim), np.float32)
        feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "position_ids": positions.numpy(),
                **{f"past_key_values.{i}.{kv}": empty for i in range(layers) for kv in ("key", "value")}}
        logits, *present = run(gpt2, feed)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache = out.past_key_values
        expected = [t[:, :, :length].numpy() for i in range(layers) for t in (cache.keys[i], cache.values[i])]
        names = [o["name"] for o in gpt2.meta["outputs"]]
        # padding positions attend to nothing: what they hold is no output (and is masked out of every later step)
        real = mask.bool().numpy()  # (B, T)
        assert_all_close([logits[real], *[p.transpose(0, 2, 1, 3)[real] for p in present]],
                         [out.logits.numpy()[real], *[e.transpose(0, 2, 1, 3)[real] for e in expected]], names)
        # one step: the next token, with the presents as pasts
        token = out.logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        step_mask = torch.cat([mask, torch.ones(batch_size, 1, dtype=mask.dtype)], dim=1)
        step_positions = positions[:, -1:] + 1
        feed = {"input_ids": token.numpy(), "attention_mask": step_mask.numpy(), "position_ids": step_positions.numpy(),
                **dict(zip([n for n in feed if n.startswith("past")], present))}
        step_logits, *step_present = run(gpt2, feed)
        with torch.no_grad():
            step = model(input_ids=token, attention_mask=step_mask, position_ids=step_positions,
                         past_key_values=cache, use_cache=True)
        expected = [t[:, :, :length + 1].numpy() for i in range(layers)
                    for t in (step.past_key_values.keys[i], step.past_key_values.values[i])]
        real = step_mask.bool().numpy()
        assert_all_close([step_logits, *[p.transpose(0, 2, 1, 3)[real] for p in step_present]],
                         [step.logits.numpy(), *[e.transpose(0, 2, 1, 3)[real] for e in expected]], names)


def test_gpt2_metadata_describes_the_cache(gpt2):
    meta, config = gpt2.meta, gpt2.model.config
    cache = meta["generation"]["cache"]
    assert (cache["num_layers"], cache["num_heads"], cache["head_dim"]) == (config.n_layer, config.n_head,
                                                                            config.n_embd // config.n_head)
    assert meta["generation"]["eos_token_id"] == config.eos_token_id and meta["generation"]["pad_token_id"] == PAD
    inputs = {i["name"]: i["shape"] for i in meta["inputs"]}
    assert inputs["input_ids"] == ["batch", "sequence"] and inputs["position_ids"] == ["batch", "sequence"]
    assert inputs["past_key_values.0.key"] == ["batch", config.n_head, "past_sequence", cache["head_dim"]]
    assert sorted(inputs["attention_mask"][1].split(" + ")) == ["past_sequence", "sequence"]
    outputs = {o["name"]: o["shape"] for o in meta["outputs"]}
    assert outputs["logits"] == ["batch", "sequence", config.vocab_size]
    assert len(outputs) == 1 + 2 * config.n_layer and f"present.{config.n_layer - 1}.value" in outputs
    assert meta["dynamic_axes"]["past_sequence"]["min"] == 0


# --- image models ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet(tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("resnet")
    make_resnet(root / "src", "bottleneck", seed=9)
    return export(root, zoo.AutoModelForImageClassification)


@pytest.fixture(scope="module")
def simple_cnn(tmp_path_factory) -> Exported:
    from zoo.plugins.cnn.config import SimpleCNNConfig
    from zoo.plugins.cnn.simple_cnn import SimpleCNNForImageClassification

    root = tmp_path_factory.mktemp("simple-cnn")
    torch.manual_seed(10)
    config = SimpleCNNConfig(image_size=28, conv_channels=[4, 8], hidden_sizes=[24], id2label={0: "cat", 1: "dog", 2: "owl"})
    SimpleCNNForImageClassification(config).save_pretrained(root / "src")
    return export(root, zoo.AutoModelForImageClassification)


@pytest.mark.parametrize("which", ["resnet", "simple_cnn"])
@pytest.mark.parametrize("batch", IMAGE_BATCHES)
def test_image_classifiers_match_zoo(request, which, batch):
    exported = request.getfixturevalue(which)
    shape = exported.meta["inputs"][0]["shape"]
    assert shape[0] == "batch" and all(isinstance(d, int) for d in shape[1:])
    pixels = np.random.default_rng(batch).standard_normal((batch, *shape[1:])).astype(np.float32)
    inputs = {"pixel_values": pixels}
    assert_all_close(run(exported, inputs), zoo_outputs(exported.model, inputs, ["logits"]), ["logits"])


def test_image_exports_carry_the_image_processor(resnet, simple_cnn):
    assert resnet.meta["inputs"][0]["shape"] == ["batch", 3, 64, 64]  # the processor's crop of its size 64
    assert simple_cnn.meta["inputs"][0]["shape"] == ["batch", 3, 28, 28]
    assert simple_cnn.meta["postprocessing"]["labels"] == ["cat", "dog", "owl"]
    assert resnet.meta["postprocessing"]["labels"] == [f"class-{i}" for i in range(7)]
    for exported in (resnet, simple_cnn):
        out = exported.file.parent
        assert (out / "preprocessor_config.json").is_file()
        assert exported.meta["preprocessing"]["image_processor"] == "preprocessor_config.json"
        with registry():
            processor = zoo.AutoImageProcessor.from_pretrained(out)
        image = torch.randint(0, 256, (3, 80, 70), dtype=torch.uint8)
        pixels = processor(image)["pixel_values"]
        assert list(pixels.shape[1:]) == exported.meta["inputs"][0]["shape"][1:]


# --- options --------------------------------------------------------------------------------------------------------------


def test_float16_export_runs_in_onnxruntime(tmp_path):
    make_bert(tmp_path / "src", "base", seed=11)
    with registry():
        file = to_onnx(tmp_path / "src", tmp_path / "out", dtype="float16")
        reference = zoo.AutoModel.from_pretrained(tmp_path / "src")  # float32
    meta = read_meta(tmp_path / "out")
    assert meta["dtype"] == "float16" and meta["outputs"][0]["dtype"] == "float16"
    inputs = text_inputs(reference.config.vocab_size, 2, 10, token_types=True)
    got = session(file).run(["last_hidden_state"], inputs)[0]
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), zoo_outputs(reference, inputs, ["last_hidden_state"])[0],
                               atol=2e-2)


def test_static_export_of_a_model_object_with_its_tokenizer(tmp_path):
    make_bert(tmp_path / "src", "sequence-classification", seed=12, num_hidden_layers=1)
    with registry():
        model = zoo.AutoModelForSequenceClassification.from_pretrained(tmp_path / "src")
        tokenizer = zoo.AutoTokenizer.from_pretrained(tmp_path / "src")
        model.train()
        file = to_onnx(model, tmp_path / "out", tokenizer=tokenizer, dynamic=False, sequence_length=12)
    assert model.training  # the caller's model is left as it was
    model.eval()
    meta = read_meta(tmp_path / "out")
    assert [i["shape"] for i in meta["inputs"]] == [[1, 12]] * 3 and meta["dynamic_axes"] == {}
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    inputs = text_inputs(model.config.vocab_size, 1, 12, token_types=True)
    assert_all_close(session(file).run(None, inputs), zoo_outputs(model, inputs, ["logits"]), ["logits"])




# --- what cannot be exported says why ---------------------------------------------------------------------------------------


def test_old_opsets_and_unknown_tasks_are_refused(bert_cls, tmp_path):
    with registry():
        with pytest.raises(ExportError, match="opset 17 .* 18 or newer"):
            to_onnx(bert_cls.source, tmp_path, opset=17)
        with pytest.raises(ExportError, match="task 'summarization' is not a task zoo exports"):
            to_onnx(bert_cls.source, tmp_path, task="summarization")
        with pytest.raises(ExportError, match="dtype 'int8' cannot be exported"):
            to_onnx(bert_cls.source, tmp_path, dtype="int8")
        with pytest.raises(ExportError, match="the 'sequence-classification' head, but task 'base'"):
            to_onnx(bert_cls.model, tmp_path, task="base")
        with pytest.raises(zoo.errors.TaskNotSupportedError, match="no 'image-classification' model"):
            to_onnx(bert_cls.source, tmp_path, task="image-classification")
    assert not (tmp_path / "model.onnx").exists()


def test_a_data_dependent_branch_is_named(isolated_registry, tmp_path):
    from zoo.configuration import Config
    from zoo.modeling import PreTrainedModel
    from zoo.outputs import SequenceClassifierOutput
    from zoo.registry import Architecture, hookimpl

    class BranchyConfig(Config):
        model_type = "branchy"

    class BranchyForSequenceClassification(PreTrainedModel):
        config_class = BranchyConfig

        def __init__(self, config):
            super().__init__(config)
            self.embed = torch.nn.Embedding(16, 4)
            self.post_init()

        def forward(self, input_ids=None, attention_mask=None):
            x = self.embed(input_ids).mean(1)  # (B, 4)
            if bool((input_ids == 3).any()):  # a branch on the values of the input
                x = -x
            return SequenceClassifierOutput(logits=x)

    plugin = type(sys)("branchy_plugin")
    plugin.register_architectures = hookimpl(lambda register: register(Architecture(
        model_type="branchy", config=BranchyConfig, models={"sequence-classification": BranchyForSequenceClassification})))
    isolated_registry.register_plugin(plugin, name="branchy")
    model = BranchyForSequenceClassification(BranchyConfig(vocab_size=16))
    with pytest.raises(ExportError) as info:
        to_onnx(model, tmp_path)
    message = str(info.value)
    assert "BranchyForSequenceClassification (model_type 'branchy', task 'sequence-classification')" in message
    assert "data-dependent" in message and "test_onnx.py" in message and "(input_ids == 3).any()" in message


def test_a_model_that_refuses_the_example_says_so(tmp_path):
    make_gpt2(tmp_path / "src", "sequence-classification", n_layer=1)  # no pad_token_id: batches of one only
    with registry(), pytest.raises(ExportError, match="fails on the example inputs .* pad_token_id"):
        to_onnx(tmp_path / "src", tmp_path / "out")


def test_missing_onnx_names_the_extra(monkeypatch, bert_cls, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(MissingDependencyError, match=r"onnxscript.*pip install 'zoo-hub\[onnx\]'"):
        to_onnx(bert_cls.source, tmp_path)


def test_import_zoo_export_imports_no_torch():
    code = "import sys, zoo.export; zoo.export.__all__; print('torch' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
