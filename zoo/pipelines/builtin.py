"""The built-in pipeline tasks, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import PipelineTask, hookimpl

_P = "zoo.pipelines"


@hookimpl
def register_pipelines(register: Callable[[PipelineTask], None]) -> None:
    register(PipelineTask(
        "text-classification", f"{_P}.text_classification:TextClassificationPipeline", aliases=("sentiment-analysis",),
    ))
