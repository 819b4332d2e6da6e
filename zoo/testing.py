"""Conformance checks for plugin authors: a pytest plugin shipped with zoo.

It is registered through the ``pytest11`` entry point, so in any project where zoo-hub is installed the fixture
``zoo_registry`` is available, and a plugin's test module gets the standard checks by subclassing
:class:`ArchitectureConformance`::

    from zoo.testing import ArchitectureConformance

    class TestDistilBertConformance(ArchitectureConformance):
        model_type = "distilbert"

        def make_checkpoint(self, folder, task):
            ...  # write config.json, weights and tokenizer files for ``task``; return a reference model or None

The checks: the architecture is registered by an installed plugin; every name it exports resolves at the top level
(`zoo.<Name>`) and covers its model classes; every Auto class of its tasks resolves to the
registered class; loading its own checkpoint reports no missing or unexpected weights; save_pretrained ->
from_pretrained gives identical outputs and config; the tokenizer survives a save round trip; and, where
``make_checkpoint`` returns a reference model (e.g. transformers'), outputs agree within ``atol``.
This module imports neither torch nor pytest's fixtures machinery beyond what pytest has already loaded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

#: Output fields compared between zoo and the reference model, when both have them.
COMPARED_OUTPUTS = ("last_hidden_state", "logits", "start_logits", "end_logits", "prediction_logits")


@pytest.fixture
def zoo_registry() -> Iterator[Any]:
    """A fresh registry that loads the built-ins and the installed ``zoo`` entry points, as a user's process does."""
    from zoo.registry import Registry, set_registry

    fresh = Registry(entry_points=True)
    previous = set_registry(fresh)
    try:
        yield fresh.load()
    finally:
        set_registry(previous)


def auto_class_for(task: str) -> type:
    """The Auto class whose task is ``task`` (found by walking the Auto classes, not by a table)."""
    from zoo.auto import _AutoModel

    for cls in _AutoModel.__subclasses__():
        if cls.task == task:
            return cls
    raise LookupError(f"no zoo Auto class loads task '{task}'")


class ArchitectureConformance(ABC):
    """Subclass it in a test module, set ``model_type`` and implement :meth:`make_checkpoint`."""

    model_type: ClassVar[str] = ""
    #: Tasks to check; default: every task the architecture registers.
    tasks: ClassVar[tuple[str, ...] | None] = None
    atol: ClassVar[float] = 1e-5
    texts: ClassVar[tuple[str, ...]] = ("Hello world!", "A second, rather longer sentence to pad the first one.")

    # --- hooks for the plugin author ---------------------------------------------------------------------------------

    @abstractmethod
    def make_checkpoint(self, folder: Path, task: str) -> Any:
        """Write a small checkpoint for ``task`` into ``folder``; return a reference model (eval mode) or None."""

    def make_inputs(self, tokenizer: Any) -> dict[str, Any]:
        """Model inputs for the checks (default: the tokenised ``texts``, padded)."""
        return dict(tokenizer(list(self.texts), padding=True, return_tensors="pt"))

    def reference_outputs(self, reference: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        """The reference model's outputs by name (default: call it and read COMPARED_OUTPUTS)."""
        import torch

        with torch.no_grad():
            out = reference(**inputs)
        return {name: getattr(out, name) for name in COMPARED_OUTPUTS if getattr(out, name, None) is not None}

    # --- helpers -------------------------------------------------------------------------------------------------------

    def _tasks(self, registry: Any) -> tuple[str, ...]:
        return self.tasks or registry.architecture(self.model_type).tasks

    @staticmethod
    def _outputs(model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        import torch

        with torch.no_grad():
            out = model(**inputs)
        return {name: getattr(out, name) for name in COMPARED_OUTPUTS if getattr(out, name, None) is not None}

    def _load(self, folder: Path, task: str) -> tuple[Any, Any]:
        from zoo.auto import AutoTokenizer

        model = auto_class_for(task).from_pretrained(folder)
        return model, AutoTokenizer.from_pretrained(folder)

    # --- the checks ----------------------------------------------------------------------------------------------------

    def test_registered_by_an_installed_plugin(self, zoo_registry: Any) -> None:
        from zoo.configuration import Config
        from zoo.modeling import PreTrainedModel

        arch = zoo_registry.architecture(self.model_type)
        config_cls = arch.config_class()
        assert issubclass(config_cls, Config) and config_cls.model_type == self.model_type
        for task in self._tasks(zoo_registry):
            model_cls = arch.model_class(task)
            assert issubclass(model_cls, PreTrainedModel), f"{task}: {model_cls} is not a zoo PreTrainedModel"
            assert issubclass(config_cls, model_cls.config_class)

    def test_exported_names_resolve(self, zoo_registry: Any) -> None:
        import zoo

        arch = zoo_registry.architecture(self.model_type)
        for name in arch.exports:
            obj = getattr(zoo, name)
            assert getattr(obj, "__name__", None) in (name, name.removesuffix("Fast")), \
                f"zoo.{name} resolves to {obj!r}, an object of another name"
        exported = {getattr(zoo, n) for n in arch.exports}
        for task in self._tasks(zoo_registry):
            model_cls = arch.model_class(task)
            assert model_cls in exported, f"{task}: {model_cls.__name__} is not in the architecture's exports"

    def test_auto_classes_resolve_and_load_cleanly(self, zoo_registry: Any, tmp_path: Path) -> None:
        from zoo.auto import AutoConfig

        arch = zoo_registry.architecture(self.model_type)
        for task in self._tasks(zoo_registry):
            folder = tmp_path / task
            self.make_checkpoint(folder, task)
            assert type(AutoConfig.from_pretrained(folder)) is arch.config_class()
            model, info = auto_class_for(task).from_pretrained(folder, output_loading_info=True)
            assert type(model) is arch.model_class(task)
            assert not info["missing_keys"] and not info["unexpected_keys"], f"{task}: {info}"

    def test_save_load_round_trip(self, zoo_registry: Any, tmp_path: Path) -> None:
        import torch

        for task in self._tasks(zoo_registry):
            self.make_checkpoint(tmp_path / task, task)
            model, tokenizer = self._load(tmp_path / task, task)
            inputs = self.make_inputs(tokenizer)
            model.save_pretrained(tmp_path / f"{task}-saved")
            tokenizer.save_pretrained(tmp_path / f"{task}-saved")
            again, tokenizer_again = self._load(tmp_path / f"{task}-saved", task)
            assert again.config.to_dict() == model.config.to_dict()
            assert dict(tokenizer_again(list(self.texts))) == dict(tokenizer(list(self.texts)))
            before, after = self._outputs(model, inputs), self._outputs(again, inputs)
            assert before and before.keys() == after.keys()
            for name in before:
                torch.testing.assert_close(after[name], before[name], atol=0, rtol=0, msg=f"{task}.{name}")

    def test_parity_with_reference(self, zoo_registry: Any, tmp_path: Path) -> None:
        import torch

        compared = 0
        for task in self._tasks(zoo_registry):
            reference = self.make_checkpoint(tmp_path / task, task)
            if reference is None:
                continue
            model, tokenizer = self._load(tmp_path / task, task)
            inputs = self.make_inputs(tokenizer)
            ours, theirs = self._outputs(model, inputs), self.reference_outputs(reference, inputs)
            for name in ours.keys() & theirs.keys():
                torch.testing.assert_close(ours[name], theirs[name], atol=self.atol, rtol=0, msg=f"{task}.{name}")
                compared += 1
        if compared == 0:
            pytest.skip("make_checkpoint returned no reference model: nothing to compare against")
