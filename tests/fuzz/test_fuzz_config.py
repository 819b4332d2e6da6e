"""Fuzzing config.json: generated contents for every built-in architecture against ``from_pretrained``.

Each example starts from a small valid checkpoint of one architecture and changes its config.json: a field set to
a value of another type, a negative, zero, huge or non-finite number, a field removed, an unknown key added, or the
whole file replaced by non-UTF-8 bytes or JSON that is not an object. The property:

- ``from_pretrained`` returns a model whose outputs on valid inputs are finite and of the right shape, or raises a
  ``ZooError`` whose message names config.json (or the field it refuses);
- within 10 s (a hang or a giant allocation fails the property);
- and the folder is byte-for-byte what it was (no file of the user's is ever written).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st

import zoo
from tests.fuzz.common import checkpoint_with, folder_digest
from zoo.errors import ZooError

TIME_LIMIT_S = 10.0

#: model_type -> (task, tiny config fields)
ARCHITECTURES = {
    "bert": ("masked-lm", dict(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=37, max_position_embeddings=64)),
    "roberta": ("sequence-classification", dict(vocab_size=90, hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=4, intermediate_size=37, max_position_embeddings=40,
                                                num_labels=3)),
    "gpt2": ("causal-lm", dict(vocab_size=90, n_embd=32, n_layer=2, n_head=4, n_positions=48)),
    "resnet": ("image-classification", dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                                            num_labels=3)),
    "simple-cnn": ("image-classification", dict(image_size=16, conv_channels=[4], kernel_size=3, hidden_sizes=[8])),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One small random checkpoint per architecture, written by zoo (the loader under test reads it back)."""
    from zoo.registry import Registry, set_registry

    previous = set_registry(Registry(entry_points=False))
    root = tmp_path_factory.mktemp("fuzz-config")
    out = {}
    try:
        torch.manual_seed(0)
        for model_type, (task, fields) in ARCHITECTURES.items():
            config = zoo.AutoConfig.for_model(model_type, **fields)
            cls = zoo.get_registry().architecture(model_type).model_class(task)
            cls.from_config(config).save_pretrained(root / model_type)
            out[model_type] = root / model_type
    finally:
        set_registry(previous)
    return out


def sample_inputs(model_type: str, config) -> dict[str, torch.Tensor]:
    """Valid inputs for the loaded model, sized from its (possibly changed) config."""
    if model_type in ("resnet", "simple-cnn"):
        size = config.image_size if model_type == "simple-cnn" else 32
        return {"pixel_values": torch.randn(2, config.num_channels, size, size, generator=torch.Generator().manual_seed(0))}
    if model_type == "gpt2":
        length = min(5, config.n_positions)
    elif model_type == "roberta":
        length = min(5, config.max_position_embeddings - config.pad_token_id - 1)
    else:
        length = min(5, config.max_position_embeddings)
    ids = torch.randint(0, config.vocab_size, (2, length), generator=torch.Generator().manual_seed(0))
    if model_type == "roberta":  # a pad token would not take a position: keep every token a real one
        ids[ids == config.pad_token_id] = (config.pad_token_id + 1) % config.vocab_size
    return {"input_ids": ids}


# --- what a config.json may be turned into ----------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.sampled_from([0, -1, -3, 1, 2, 3, 7, 10**12, 2**31, -(2**63), 10**30]),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, -0.0, 1e-300, 1e300]),
)
VALUES = st.one_of(
    NUMBERS,
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["gelu", "relu", "absolute", "bottleneck", "basic", "regression", "float16", "bert"]),
    st.lists(st.one_of(st.integers(-3, 70), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.sampled_from(["0", "1", "a", "-1", "2"]), st.text(max_size=4), max_size=3),
)


@st.composite
def config_edits(draw, base: dict) -> dict:
    data = dict(base)
    keys = sorted(k for k in data if k != "model_type")
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["set", "set", "nudge", "nudge", "delete", "add"]))
        if action == "set":
            data[draw(st.sampled_from(keys))] = draw(VALUES)
        elif action == "nudge":  # a plausible value of the right type: what a config that does not match looks like
            key = draw(st.sampled_from(keys))
            value = data.get(key)
            if isinstance(value, bool):
                data[key] = not value
            elif isinstance(value, int) and abs(value) < 2**20:
                data[key] = draw(st.integers(max(0, value - 3), max(0, value) * 2 + 3))
            elif isinstance(value, float):
                data[key] = draw(st.floats(0, 1))
            elif isinstance(value, list) and value and all(isinstance(v, int) and 0 < v < 2**20 for v in value):
                data[key] = draw(st.lists(st.integers(1, max(value) * 2), min_size=1, max_size=len(value) + 1))
        elif action == "delete":
            data.pop(draw(st.sampled_from(keys)), None)
        else:
            name = draw(st.one_of(st.sampled_from(["num_labels", "id2label", "label2id", "hidden_size", "torch_dtype",
                                                   "trust_remote_code", "_name_or_path", "validate", "__class__"]),
                                  st.text(min_size=1, max_size=10)))
            data[name] = draw(VALUES)
    return data


RAW_FILES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\xff\xfe{}", b'{"model_type": "bert", "x": "\xc3\x28"}', b"[]", b"null", b'"bert"', b"3.5",
                     b"{" * 5000, b'{"model_type": 1}', b'{"model_type": ["bert"]}', b"{}", b"\x00" * 16]),
    st.lists(VALUES, max_size=3).map(lambda v: json.dumps(v).encode()),
)


def check_load(folder: Path, model_type: str, mutated_keys: set[str]) -> str:
    task = ARCHITECTURES[model_type][0]
    before = folder_digest(folder)
    start = time.perf_counter()
    try:
        model = zoo.get_registry().architecture(model_type).model_class(task).from_pretrained(folder)
    except ZooError as exc:
        elapsed = time.perf_counter() - start
        message = str(exc)
        assert "config.json" in message or any(f"'{k}'" in message or f"{k}=" in message for k in mutated_keys), message
        outcome = f"refused: {type(exc).__name__}"
    else:
        elapsed = time.perf_counter() - start
        with torch.no_grad():
            out = model(**sample_inputs(model_type, model.config))
        logits = out.logits
        assert logits.shape[0] == 2 and torch.isfinite(logits).all()
        outcome = "loaded, outputs finite"
    assert elapsed < TIME_LIMIT_S, f"from_pretrained took {elapsed:.1f} s"
    assert folder_digest(folder) == before
    return outcome


@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
@given(data=st.data())
def test_generated_config_json_loads_or_is_a_clear_error(checkpoints, model_type, data):
    source = checkpoints[model_type]
    base = json.loads((source / "config.json").read_text())
    config = data.draw(config_edits(base), label="config.json")
    with checkpoint_with(source, "config.json", json.dumps(config, allow_nan=True).encode()) as folder:
        changed = {k for k in set(config) | set(base) if config.get(k, ...) != base.get(k, ...)}
        outcome = check_load(folder, model_type, changed)
    event(outcome)


@pytest.mark.parametrize("model_type", ["bert", "resnet"])
@given(content=RAW_FILES)
def test_config_json_that_is_not_json_text_or_not_an_object_is_a_clear_error(checkpoints, model_type, content):
    source = checkpoints[model_type]
    with checkpoint_with(source, "config.json", content) as folder:
        before = folder_digest(folder)
        start = time.perf_counter()
        for load in (zoo.AutoModel.from_pretrained, zoo.AutoConfig.from_pretrained):
            with pytest.raises(ZooError) as caught:
                load(folder)
            assert "config.json" in str(caught.value), str(caught.value)
        assert time.perf_counter() - start < TIME_LIMIT_S
        assert folder_digest(folder) == before
