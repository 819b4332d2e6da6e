"""TensorFlow files holding the weights of small random transformers models, for the from_tf tests.

- TF1 checkpoints in the layouts of Google's BERT release and OpenAI's GPT-2 release, written by TensorFlow itself
  (``tf.compat.v1`` variables and ``tf.compat.v1.train.Saver``) in a subprocess: the test process never imports
  TensorFlow (tests/convert blocks it there, to show that zoo reads the files alone). All checkpoints of a session
  are written by one subprocess, as TensorFlow takes seconds to import.
- ``tf_model.h5`` files in the layout of transformers' TF classes (``tf_bert_model/bert/encoder/layer_._0/...:0``
  inside one HDF5 group per top-level Keras layer, the legacy ``save_weights`` format), written with h5py:
  transformers 5 has no TF classes and Keras 3 writes another format.

The TensorFlow names are derived here from each PyTorch module's type (Linear -> ``kernel``, transposed;
LayerNorm -> ``gamma``/``beta``; Embedding; Conv1D), independently of zoo's mapping, with the head scopes the
releases use, so a mistake in zoo's mapping shows up as a wrong output rather than being mirrored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.checkpoints import BERT_VOCAB, assert_outputs_equal

SCALE = 0.2

TINY_BERT = dict(vocab_size=len(BERT_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=37, max_position_embeddings=64, type_vocab_size=2)
TINY_GPT2 = dict(n_positions=48, n_embd=32, n_layer=2, n_head=4)
TINY_DISTILBERT = dict(vocab_size=len(BERT_VOCAB), dim=32, n_layers=2, n_heads=4, hidden_dim=48,
                       max_position_embeddings=64)

HF_CLASSES = {
    "bert": {"base": "BertModel", "pretraining": "BertForPreTraining", "masked-lm": "BertForMaskedLM",
             "sequence-classification": "BertForSequenceClassification",
             "token-classification": "BertForTokenClassification", "question-answering": "BertForQuestionAnswering"},
    "roberta": {"base": "RobertaModel", "masked-lm": "RobertaForMaskedLM",
                "sequence-classification": "RobertaForSequenceClassification",
                "token-classification": "RobertaForTokenClassification",
                "question-answering": "RobertaForQuestionAnswering"},
    "gpt2": {"base": "GPT2Model", "causal-lm": "GPT2LMHeadModel", "sequence-classification": "GPT2ForSequenceClassification"},
    "distilbert": {"base": "DistilBertModel", "masked-lm": "DistilBertForMaskedLM",
                   "sequence-classification": "DistilBertForSequenceClassification",
                   "token-classification": "DistilBertForTokenClassification",
                   "question-answering": "DistilBertForQuestionAnswering"},
}

# A small corpus for GPT-2's byte-level BPE (OpenAI's encoder.json + vocab.bpe are that format).
GPT2_CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "GPT-2 is a byte-level BPE model: every byte is encodable.",
    "Hello, world! Hello again.", "naïve café über straße", "你好，世界！", "😀 🎉", "def f(x):\n    return x * 2\n",
    "  leading spaces and\ttabs", "numbers 12345 and 3.14",
] * 3


# --- random transformers models -------------------------------------------------------------------------------------------


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-draw every parameter (LayerNorm weights around 1), so a tensor loaded wrongly or not at all shows."""
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * SCALE
            owner = model.get_submodule(name.rpartition(".")[0])
            param.copy_(1 + noise if isinstance(owner, torch.nn.LayerNorm) and name.endswith("weight") else noise)
    return model.eval()


def hf_model(model_type: str, task: str, seed: int = 0, **overrides: Any) -> Any:
    """A random transformers model of ``model_type`` for ``task`` (eval mode)."""
    import transformers

    torch.manual_seed(seed)
    if model_type == "bert":
        config = transformers.BertConfig(**{**TINY_BERT, **overrides})
    elif model_type == "roberta":
        config = transformers.RobertaConfig(**{**TINY_BERT, "max_position_embeddings": 66, "pad_token_id": 1,
                                               "type_vocab_size": 1, **overrides})
    elif model_type == "gpt2":
        config = transformers.GPT2Config(**{"vocab_size": 120, **TINY_GPT2, "bos_token_id": 1, "eos_token_id": 1,
                                            "pad_token_id": 0, **overrides})
    elif model_type == "distilbert":
        config = transformers.DistilBertConfig(**{**TINY_DISTILBERT, **overrides})
    else:
        raise ValueError(model_type)
    return randomize(getattr(transformers, HF_CLASSES[model_type][task])(config), seed)


def parameters(model: torch.nn.Module) -> dict[str, tuple[str, np.ndarray]]:
    """``{name: (kind, array)}`` of every distinct parameter (tied copies once, under their first name); kind is
    the owning module's: linear, layernorm, embedding, conv1d, or param (a bare nn.Parameter such as a head bias)."""
    kinds = {"Linear": "linear", "LayerNorm": "layernorm", "Embedding": "embedding", "Conv1D": "conv1d"}
    out = {}
    for name, param in model.named_parameters():
        owner = model.get_submodule(name.rpartition(".")[0])
        out[name] = (kinds.get(type(owner).__name__, "param"), param.detach().numpy().copy())
    return out


# --- Google's BERT names ----------------------------------------------------------------------------------------------------


def google_bert_variables(model: Any, adam: bool = True) -> dict[str, np.ndarray]:
    """A transformers BERT's weights under the names of Google's release (modeling.py, run_pretraining.py,
    run_classifier.py, run_squad.py), with the optimizer's adam_m/adam_v slots and global_step when ``adam``."""
    out: dict[str, np.ndarray] = {}
    for name, (kind, array) in parameters(model).items():
        head, _, leaf = name.rpartition(".")
        if name == "cls.predictions.bias":
            out["cls/predictions/output_bias"] = array
            continue
        if head == "cls.seq_relationship":  # used as matmul(x, w, transpose_b=True): [2, hidden], not transposed
            out[f"cls/seq_relationship/output_{'weights' if leaf == 'weight' else 'bias'}"] = array
            continue
        if head in ("classifier", "qa_outputs"):  # run_classifier's / run_squad's output_weights [labels, hidden]
            scope = "" if head == "classifier" else "cls/squad/"
            out[f"{scope}output_{'weights' if leaf == 'weight' else 'bias'}"] = array
            continue
        path = head.replace(".layer.", ".layer_").replace(".", "/")
        if kind == "embedding":
            out[path] = array  # bert/embeddings/word_embeddings: a bare variable
        elif kind == "layernorm":
            out[f"{path}/{'gamma' if leaf == 'weight' else 'beta'}"] = array
        elif kind == "linear":
            out[f"{path}/{'kernel' if leaf == 'weight' else 'bias'}"] = array.T.copy() if leaf == "weight" else array
        else:
            raise AssertionError(f"no Google BERT name for {name} ({kind})")
    if adam:
        rng = np.random.default_rng(0)
        for name in list(out):
            out[f"{name}/adam_m"] = rng.standard_normal(out[name].shape).astype(np.float32)
            out[f"{name}/adam_v"] = np.abs(rng.standard_normal(out[name].shape)).astype(np.float32)
        out["global_step"] = np.array(1000, dtype=np.int64)
    return out


def bert_config_json(config: Any) -> dict[str, Any]:
    """bert_config.json as Google wrote it: BertConfig's fields of the original code, nothing else."""
    keys = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size", "initializer_range",
            "intermediate_size", "max_position_embeddings", "num_attention_heads", "num_hidden_layers",
            "type_vocab_size", "vocab_size")
    return {key: getattr(config, key) for key in keys}


# --- OpenAI's GPT-2 names ------------------------------------------------------------------------------------------------------


def openai_gpt2_variables(model: Any, adam: bool = False) -> dict[str, np.ndarray]:
    """A transformers GPT-2's weights under the names of OpenAI's model.py: conv1d ``w`` as ``[1, in, out]``;
    with tf.train.AdamOptimizer's ``Adam``/``Adam_1`` slots and beta powers when ``adam`` (fine-tuned copies)."""
    out: dict[str, np.ndarray] = {}
    for name, (kind, array) in parameters(model).items():
        head, _, leaf = name.rpartition(".")
        if not head.startswith("transformer."):
            raise AssertionError(f"OpenAI's release has no {name}")
        path = "model/" + head.removeprefix("transformer.").replace("h.", "h", 1).replace(".", "/")
        if kind == "embedding":
            out[path] = array
        elif kind == "layernorm":
            out[f"{path}/{'g' if leaf == 'weight' else 'b'}"] = array
        elif kind == "conv1d":
            out[f"{path}/{'w' if leaf == 'weight' else 'b'}"] = array[None] if leaf == "weight" else array
        else:
            raise AssertionError(f"no OpenAI GPT-2 name for {name} ({kind})")
    if adam:
        rng = np.random.default_rng(1)
        for name in list(out):
            out[f"{name}/Adam"] = rng.standard_normal(out[name].shape).astype(np.float32)
            out[f"{name}/Adam_1"] = np.abs(rng.standard_normal(out[name].shape)).astype(np.float32)
        out["beta1_power"] = np.array(0.9, dtype=np.float32)
        out["beta2_power"] = np.array(0.999, dtype=np.float32)
    return out


def gpt2_hparams(config: Any) -> dict[str, int]:
    return {"n_vocab": config.vocab_size, "n_ctx": config.n_positions, "n_embd": config.n_embd,
            "n_head": config.n_head, "n_layer": config.n_layer}


# --- transformers' TF (Keras) names --------------------------------------------------------------------------------------------

#: The Keras scope of each transformers TF class (its snake-cased name) and of its head layers.
TF_SCOPES = {"BertModel": "tf_bert_model", "BertForPreTraining": "tf_bert_for_pre_training",
             "BertForMaskedLM": "tf_bert_for_masked_lm", "BertForSequenceClassification": "tf_bert_for_sequence_classification",
             "BertForTokenClassification": "tf_bert_for_token_classification",
             "BertForQuestionAnswering": "tf_bert_for_question_answering",
             "RobertaModel": "tf_roberta_model", "RobertaForMaskedLM": "tf_roberta_for_masked_lm",
             "RobertaForSequenceClassification": "tf_roberta_for_sequence_classification",
             "RobertaForTokenClassification": "tf_roberta_for_token_classification",
             "RobertaForQuestionAnswering": "tf_roberta_for_question_answering",
             "GPT2Model": "tf_gpt2_model", "GPT2LMHeadModel": "tf_gpt2_lm_head_model",
             "GPT2ForSequenceClassification": "tf_gpt2_for_sequence_classification",
             "DistilBertModel": "tf_distil_bert_model", "DistilBertForMaskedLM": "tf_distil_bert_for_masked_lm",
             "DistilBertForSequenceClassification": "tf_distil_bert_for_sequence_classification",
             "DistilBertForTokenClassification": "tf_distil_bert_for_token_classification",
             "DistilBertForQuestionAnswering": "tf_distil_bert_for_question_answering"}
#: PyTorch module paths whose TF layer has another name (TFBertForPreTraining's ``mlm___cls`` and ``nsp___cls``).
_TF_HEAD_SCOPES = {"cls.predictions": "mlm___cls/predictions", "cls.seq_relationship": "nsp___cls/seq_relationship"}


def keras_variables(model: Any) -> dict[str, np.ndarray]:
    """A transformers model's weights under the names its TF class gives them in tf_model.h5 (``:0`` included)."""
    scope = TF_SCOPES[type(model).__name__]
    # a bare base model's weights are still under its main layer in TF (tf_bert_model/bert/...)
    main = "" if hasattr(model, model.base_model_prefix) else model.base_model_prefix + "."
    out: dict[str, np.ndarray] = {}
    for name, (kind, array) in parameters(model).items():
        head, _, leaf = (main + name).rpartition(".")
        for ours, theirs in _TF_HEAD_SCOPES.items():
            if head == ours or head.startswith(ours + "."):
                head = theirs + head[len(ours):]
        parts = head.split(".") if head else []
        path = "/".join(f"{p}_._{parts[i + 1]}" if i + 1 < len(parts) and parts[i + 1].isdigit() else p
                        for i, p in enumerate(parts) if not p.isdigit())
        if kind == "embedding":  # transformers' own embedding weights are "weight", Keras Embedding's "embeddings"
            own = path.endswith("word_embeddings")
            out[f"{path}/{'weight' if own else 'embeddings'}"] = array
        elif kind == "layernorm":
            out[f"{path}/{'gamma' if leaf == 'weight' else 'beta'}"] = array
        elif kind == "linear":
            out[f"{path}/{'kernel' if leaf == 'weight' else 'bias'}"] = array.T.copy() if leaf == "weight" else array
        elif kind == "conv1d":  # TFConv1D: weight [in, out] as PyTorch's, bias [1, out]
            out[f"{path}/{leaf}"] = array if leaf == "weight" else array[None]
        elif kind == "param" and leaf == "bias":  # an LM head's own bias (TF*LMPredictionHead's "bias")
            out[f"{path}/bias"] = array
        else:
            raise AssertionError(f"no TF name for {name} ({kind})")
    return {f"{scope}/{name}:0": array for name, array in out.items()}


#: The head layer of each masked-LM TF class and the scope of the embeddings it shares (and Keras tracks).
SHARED_EMBEDDINGS = {"mlm___cls": "/bert/embeddings/", "lm_head": "/roberta/embeddings/",
                     "vocab_projector": "/distilbert/embeddings/"}


def write_keras_h5(path: Path, variables: dict[str, np.ndarray], keras_version: str = "2.15.0") -> None:
    """tf_model.h5 in Keras 2's ``save_weights`` layout: root attribute ``layer_names``; per top-level layer a group
    with attribute ``weight_names`` and one dataset per weight, at the weight's own name (nested groups).

    As Keras does, a head that holds the model's embedding layer (to tie its decoder to it) lists that layer's
    weights too, so they are stored twice, once under each top-level layer."""
    import h5py

    layers: dict[str, list[str]] = {}
    for name in variables:
        layers.setdefault(name.split("/")[1], []).append(name)
    for head, shared in SHARED_EMBEDDINGS.items():
        if head in layers:
            layers[head] = [n for n in variables if shared in n] + layers[head]
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras_version.encode()
        for layer in sorted(layers):
            group = f.create_group(layer)
            group.attrs["weight_names"] = np.array([n.encode() for n in layers[layer]])
            for name in layers[layer]:
                group.create_dataset(name, data=variables[name])


def write_h5_folder(folder: Path, model: Any, variables: dict[str, np.ndarray] | None = None) -> Path:
    """A Hub-style TF folder: config.json (as transformers' TF save_pretrained writes it: ``architectures`` without
    the TF prefix), tf_model.h5 (``variables``, default the model's) and, for WordPiece models, vocab.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(folder)
    write_keras_h5(folder / "tf_model.h5", keras_variables(model) if variables is None else variables)
    if model.config.model_type in ("bert", "distilbert"):
        (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    return folder


# --- TF1 checkpoints, written by TensorFlow -----------------------------------------------------------------------------------

_WRITER = """
tf.compat.v1.disable_eager_execution()
for prefix, npz, names in json.load(open(sys.argv[1])):
    arrays = np.load(npz)
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.Variable(arrays[f"v{i}"], name=name) for i, name in enumerate(names)}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix, write_meta_graph=False)
"""


def write_tf1_checkpoints(jobs: list[tuple[Path, dict[str, np.ndarray]]]) -> None:
    """Write each ``(prefix, {name: array})`` as a TF1 checkpoint with tf.compat.v1.train.Saver, all in one
    TensorFlow subprocess (tests/convert/conftest.py's run_tensorflow: skipped where TensorFlow is missing)."""
    from tests.convert.conftest import run_tensorflow

    if not jobs:
        return
    spec = []
    for prefix, variables in jobs:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        names = sorted(variables)
        npz = prefix.parent / f".{prefix.name}.arrays.npz"
        np.savez(npz, **{f"v{i}": variables[name] for i, name in enumerate(names)})
        spec.append((str(prefix), str(npz), names))
    spec_path = jobs[0][0].parent / ".tf1-jobs.json"
    spec_path.write_text(json.dumps(spec))
    run_tensorflow(_WRITER, spec_path)
    for _, npz, _ in spec:
        Path(npz).unlink()
    spec_path.unlink()


# --- release folders -----------------------------------------------------------------------------------------------------------


def bert_release(folder: Path, model: Any, adam: bool = True, jobs: list | None = None) -> Path:
    """Google's release layout: bert_config.json, vocab.txt, bert_model.ckpt.{index,data-00000-of-00001}. The
    checkpoint is appended to ``jobs`` (written later by write_tf1_checkpoints) or written now."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bert_config.json").write_text(json.dumps(bert_config_json(model.config), indent=2))
    (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    job = (folder / "bert_model.ckpt", google_bert_variables(model, adam=adam))
    if jobs is None:
        write_tf1_checkpoints([job])
    else:
        jobs.append(job)
    return folder


def train_gpt2_bpe() -> Any:
    """A small byte-level BPE (``<|endoftext|>`` first), built as GPT-2's own vocabulary was."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE

    backend = Tokenizer(BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(GPT2_CORPUS, trainer)
    return backend


def gpt2_release(folder: Path, model: Any, adam: bool = False, jobs: list | None = None) -> Path:
    """OpenAI's release layout: hparams.json, encoder.json, vocab.bpe, model.ckpt.{index,data-...}, checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hparams.json").write_text(json.dumps(gpt2_hparams(model.config), indent=2))
    backend = train_gpt2_bpe()
    scratch = folder / ".bpe"
    scratch.mkdir()
    backend.model.save(str(scratch))
    (scratch / "vocab.json").rename(folder / "encoder.json")
    (scratch / "merges.txt").rename(folder / "vocab.bpe")
    scratch.rmdir()
    job = (folder / "model.ckpt", openai_gpt2_variables(model, adam=adam))
    if jobs is None:
        write_tf1_checkpoints([job])
    else:
        jobs.append(job)
    return folder


def gpt2_vocab_size() -> int:
    return train_gpt2_bpe().get_vocab_size()


# --- the release folders of a session ------------------------------------------------------------------------------------

#: name -> (folder name, model_type, task, seed, overrides): Google's names say whether the tokenizer lowercases.
RELEASES = {
    "bert-pretraining": ("uncased_L-2_H-32_A-4", "bert", "pretraining", 1, {}),
    "bert-masked-lm": ("uncased_mlm_L-2_H-32_A-4", "bert", "masked-lm", 2, {}),
    "bert-classifier": ("cased_L-2_H-32_A-4_classifier", "bert", "sequence-classification", 3, {"num_labels": 3}),
    "bert-squad": ("chinese_L-2_H-32_A-4", "bert", "question-answering", 4, {}),
    "gpt2": ("124M", "gpt2", "causal-lm", 5, {}),
}
_BUILT: dict[str, tuple[Path, Any]] = {}


def build_releases(tmp_path_factory: Any) -> dict[str, tuple[Path, Any]]:
    """Every release folder of :data:`RELEASES` and the transformers model whose weights it holds, built once a
    session (one TensorFlow subprocess writes all the checkpoints)."""
    if not _BUILT:
        root = tmp_path_factory.mktemp("releases")
        jobs: list = []
        built = {}
        for key, (name, model_type, task, seed, overrides) in RELEASES.items():
            if model_type == "gpt2":
                model = hf_model("gpt2", task, seed, vocab_size=gpt2_vocab_size(), **overrides)
                built[key] = (gpt2_release(root / name, model, adam=True, jobs=jobs), model)
            else:
                model = hf_model("bert", task, seed, **overrides)
                built[key] = (bert_release(root / name, model, jobs=jobs), model)
        write_tf1_checkpoints(jobs)
        _BUILT.update(built)
    return dict(_BUILT)


def copy_release(key: str, releases: dict[str, tuple[Path, Any]], dest: Path) -> Path:
    """A copy of a release folder (to change one file of it), under ``dest`` with the same folder name."""
    import shutil

    source = releases[key][0]
    return Path(shutil.copytree(source, dest / source.name))


# --- comparing with transformers ---------------------------------------------------------------------------------------------

#: Texts for BERT's WordPiece (cases, accents, CJK, emoji, specials' look-alikes) and GPT-2's byte-level BPE.
TEXTS = [
    "Hello World! I LOVE Python bugs.", "  Café NAÏVE über é ü ï  ", "中国 日本語 😀 ##s", "the world, is a (test)?",
    "MixedCase and UPPER and lower", "", "don't stop-believing",
]
GPT2_TEXTS = ["Hello world! Hello, world.", "  leading and trailing spaces   ", "tabs\t\tand\nnew\n\nlines",
              "emoji 😀 🎉 done", "你好，世界！", "naïve café über straße", "numbers 12345 and 3.14", "",
              "special <|endoftext|> in the middle"]


def bert_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """A padded batch of sentence pairs over the tiny vocabulary (ids, attention_mask, token_type_ids)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, len(BERT_VOCAB), (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def outputs(model: Any, batch: dict[str, Any], model_type: str) -> Any:
    """The model's outputs (hidden states included) on ``batch``, less the inputs its architecture does not take."""
    batch = dict(batch)
    if model_type in ("gpt2", "distilbert", "roberta"):
        batch.pop("token_type_ids")
    with torch.no_grad():
        return model(**batch, output_hidden_states=True)


def assert_same_outputs(ours: Any, reference: Any, batch: dict[str, Any], model_type: str) -> None:
    """zoo's model and the transformers model give equal outputs (every key but the cache) within 1e-5."""
    expected = outputs(reference, batch, model_type)
    got = outputs(ours, batch, model_type)
    keys = [k for k in expected.keys() if k not in ("past_key_values", "cache", "cross_attentions")]
    assert keys
    assert_outputs_equal(got, expected, keys)


def hf_gpt2_tokenizer(vocab: Path, merges: Path) -> Any:
    """transformers' GPT2Tokenizer of a vocab.json + merges.txt pair (``vocab=``/``merges=`` in transformers 5,
    ``vocab_file=``/``merges_file=`` before)."""
    import inspect

    import transformers

    if "vocab" in inspect.signature(transformers.GPT2Tokenizer.__init__).parameters:
        return transformers.GPT2Tokenizer(vocab=str(vocab), merges=str(merges))
    return transformers.GPT2Tokenizer(vocab_file=str(vocab), merges_file=str(merges))
