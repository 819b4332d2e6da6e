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


@pytest.mark.parametrize("page", ["guide.md", "plugins.md", "hub.md", "pipelines.md", "training.md"])
def test_user_guide_pages_exist(page):
    assert (ROOT / "docs" / page).stat().st_size > 500
