"""The idioms' deep comparison finds every kind of difference it claims to, and accepts what both libraries
legitimately spell differently (a list for a tuple, an output dataclass for a ModelOutput)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import transformers

from tests.compat.compare import assert_same


@dataclass
class Output:
    logits: torch.Tensor
    loss: torch.Tensor | None = None


@pytest.mark.parametrize("got, expected", [
    ([1, 2, 3], (1, 2, 3)),
    ({"a": "x", "b": None}, {"a": "x", "b": None}),
    (torch.tensor([1.0, 2.0]) + 5e-6, torch.tensor([1.0, 2.0])),
    (np.array([[1, 2]]), np.array([[1, 2]])),
    (1.0 + 1e-6, 1.0),
    (Output(logits=torch.ones(2)), transformers.modeling_outputs.CausalLMOutput(logits=torch.ones(2))),
    ({"input_ids": [[1, 2]]}, transformers.BatchEncoding({"input_ids": [[1, 2]]})),
], ids=["list-tuple", "none-values", "float-atol", "numpy", "python-float", "output-objects", "batch-encoding"])
def test_equal_results_pass(got, expected):
    assert_same(got, expected)


@pytest.mark.parametrize("got, expected, message", [
    ([1, 2, 4], [1, 2, 3], r"result\[2\]: 4 != 3"),
    ([1, 2], [1, 2, 3], "length 2 != 3"),
    ({"a": 1}, {"a": 1, "b": 2}, r"missing \['b'\]"),
    ({"a": None}, {"a": 7}, r"result\['a'\]: type NoneType != int"),
    (True, 1, "type bool != int"),
    (7.0, 7, "type float != int"),
    ("text ", "text", "'text ' != 'text'"),
    (torch.tensor([1.0, 2.0]) + 1e-3, torch.tensor([1.0, 2.0]), "Tensor-likes are not close"),
    (torch.tensor([1, 2], dtype=torch.int32), torch.tensor([1, 2]), "dtype torch.int32 != torch.int64"),
    (torch.tensor([[1, 2]]), torch.tensor([1, 2]), r"shape \(1, 2\) != \(2,\)"),
    (torch.tensor([1, 3]), torch.tensor([1, 2]), r"\[1, 3\] != \[1, 2\]"),
    ([1, 2], torch.tensor([1, 2]), "expected a torch.Tensor"),
    (Output(logits=torch.ones(2), loss=torch.tensor(1.0)),
     transformers.modeling_outputs.CausalLMOutput(logits=torch.ones(2)), r"unexpected \['loss'\]"),
    (1.001, 1.0, r"1.001 != 1.0"),
], ids=["int", "length", "missing-key", "none-for-value", "bool-for-int", "float-for-int", "string", "float-tensor",
        "dtype", "shape", "int-tensor", "list-for-tensor", "extra-field", "python-float"])
def test_every_difference_is_reported_with_its_path(got, expected, message):
    with pytest.raises(AssertionError, match=message):
        assert_same(got, expected)
