"""zoo.gemm: every kernel it may choose computes F.linear's result (float32 within 1e-5, bf16 bit for bit), the
packed copies follow the parameter, the fallback works where the faster kernel is missing, and nothing changes for
autograd, torch.export or the model's state."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from tests.checkpoints import assert_outputs_equal, make_bert
from zoo import gemm
from zoo.activations import get_activation
from zoo.layers import Linear

OFFERED_FP32 = gemm.offered(torch.float32)


@pytest.fixture(autouse=True)
def fresh_choices():
    gemm._reset_for_tests()
    yield
    gemm._reset_for_tests()


def force(kernel: str, *dtypes: torch.dtype) -> None:
    for dtype in dtypes or (torch.float32, torch.bfloat16):
        gemm._choices[dtype] = gemm._Choice(kernel, {}, "set by a test")


def tensors(dtype=torch.float32, shape=(3, 5, 48), out=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g).to(dtype)
    w = (torch.randn(out, shape[-1], generator=g) / shape[-1] ** 0.5).to(dtype)
    b = torch.randn(out, generator=g).to(dtype)
    return x, w, b


@pytest.mark.parametrize("kernel", OFFERED_FP32)
@pytest.mark.parametrize("shape", [(7, 48), (3, 5, 48), (1, 48)])
def test_every_kernel_matches_f_linear_in_float32(kernel, shape):
    force(kernel)
    x, w, b = tensors(shape=shape)
    with torch.no_grad():
        torch.testing.assert_close(gemm.linear(x, w, b), F.linear(x, w, b), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(gemm.linear(x, w), F.linear(x, w), atol=1e-5, rtol=1e-5)
        # GPT-2's Conv1D layout: the (in, out) parameter itself
        w_in_out = w.t().contiguous()
        torch.testing.assert_close(gemm.linear(x, w_in_out, b, in_out=True), F.linear(x, w, b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", OFFERED_FP32)
@pytest.mark.parametrize("activation", sorted(gemm.FUSED_ACTIVATIONS) + ["gelu_fast", "quick_gelu", "linear"])
def test_activations_and_residuals_match_the_separate_ops(kernel, activation):
    force(kernel)
    x, w, b = tensors()
    residual = torch.randn(3, 5, 40)
    with torch.no_grad():
        expected = get_activation(activation)(F.linear(x, w, b))
        torch.testing.assert_close(gemm.linear(x, w, b, activation=activation), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(gemm.linear(x, w, b, add=residual), F.linear(x, w, b) + residual, atol=1e-5,
                                   rtol=1e-5)


def test_an_activation_and_a_residual_together_are_refused():
    x, w, b = tensors()
    with pytest.raises(ValueError, match="not both"):
        gemm.linear(x, w, b, activation="gelu", add=torch.zeros(3, 5, 40))


@pytest.mark.skipif("onednn-packed" not in gemm.offered(torch.bfloat16), reason="no packed oneDNN bf16 here")
@pytest.mark.parametrize("activation", [None, "gelu", "silu"])
def test_bfloat16_is_bit_identical_to_f_linear_and_the_separate_activation(activation):
    """bf16 F.linear rounds its output before an activation or a residual; the packed path must too."""
    force("onednn-packed")
    x, w, b = tensors(torch.bfloat16, shape=(4, 9, 64), out=96)
    residual = torch.randn(4, 9, 96).bfloat16()
    with torch.no_grad():
        expected = F.linear(x, w, b)
        if activation:
            expected = get_activation(activation)(expected)
        assert torch.equal(gemm.linear(x, w, b, activation=activation), expected)
        assert torch.equal(gemm.linear(x, w, b, add=residual), F.linear(x, w, b) + residual)


@pytest.mark.skipif("onednn-packed" not in OFFERED_FP32, reason="no packed oneDNN here")
def test_the_packed_copy_follows_the_parameter():
    force("onednn-packed")
    layer = Linear(48, 40)
    x = torch.randn(6, 48)
    with torch.no_grad():
        layer(x)
        assert gemm.status()["packed_bytes"] == 48 * 40 * 4
        layer.weight.mul_(2.0)  # in place: the copy is re-made
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        layer.weight = torch.nn.Parameter(torch.randn(40, 48))  # replaced: the old copy is dropped with the old one
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        assert gemm.status()["packed_bytes"] == 48 * 40 * 4
    del layer
    assert gemm.status()["packed_bytes"] == 0
    assert not gemm._packed


@pytest.mark.skipif("onednn-packed" not in OFFERED_FP32, reason="no packed oneDNN here")
def test_the_packed_copy_follows_a_module_converted_to_another_dtype():
    """``module.to(dtype)`` swaps each parameter's ``.data`` in place (same object, same version counter): the
    float32 copy must not serve the bfloat16 weight (oneDNN refused the mixed product)."""
    force("onednn-packed")
    layer = Linear(48, 40)
    x = torch.randn(6, 48)
    with torch.no_grad():
        layer(x)
        layer.to(torch.bfloat16)
        assert torch.equal(layer(x.bfloat16()), F.linear(x.bfloat16(), layer.weight, layer.bias))
        layer.to(torch.float32)
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif("onednn-packed" not in OFFERED_FP32, reason="no packed oneDNN here")
def test_past_the_memory_cap_projections_run_unpacked(monkeypatch):
    force("onednn-packed")
    monkeypatch.setattr(gemm, "_memory_limit", lambda: 0)
    x, w, b = tensors()
    with torch.no_grad():
        torch.testing.assert_close(gemm.linear(x, w, b), F.linear(x, w, b), atol=1e-5, rtol=1e-5)
    assert gemm.status()["packed_bytes"] == 0
    monkeypatch.undo()
    force("onednn-packed")
    monkeypatch.setattr(gemm, "_room_for", lambda size: False)  # a machine with little memory free
    with torch.no_grad():
        torch.testing.assert_close(gemm.linear(x, w, b), F.linear(x, w, b), atol=1e-5, rtol=1e-5)
    assert gemm.status()["packed_bytes"] == 0
    monkeypatch.undo()
    assert gemm._room_for(1)  # this machine has room for a byte


def test_autograd_sees_f_linear():
    force(OFFERED_FP32[-1])
    layer = Linear(48, 40)
    x = torch.randn(6, 48, requires_grad=True)
    layer(x, activation="gelu").sum().backward()
    reference = Linear(48, 40)
    reference.load_state_dict(layer.state_dict())
    x2 = x.detach().clone().requires_grad_()
    F.gelu(F.linear(x2, reference.weight, reference.bias)).sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)
    torch.testing.assert_close(x.grad, x2.grad)
    assert gemm.status()["packed_bytes"] == 0  # nothing packed for a pass that records a graph


def test_the_model_state_holds_only_the_parameters():
    force(OFFERED_FP32[-1])
    layer = Linear(48, 40)
    with torch.no_grad():
        layer(torch.randn(6, 48))
    assert sorted(layer.state_dict()) == ["bias", "weight"]
    assert isinstance(layer, torch.nn.Linear)
    import copy

    copy.deepcopy(layer)  # no packed tensor rides along


def test_torch_export_records_f_linear():
    force(OFFERED_FP32[-1])

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = Linear(48, 40)

        def forward(self, x):
            return self.dense(x, activation="gelu")

    with torch.no_grad():
        program = torch.export.export(Block().eval(), (torch.randn(6, 48),))
    ops = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("mkldnn" in op for op in ops), ops
    assert any("linear" in op for op in ops), ops


def test_the_fallback_when_this_torch_offers_no_packed_kernel(tmp_path, monkeypatch):
    """A torch without oneDNN (or without the packing ops) runs everything on aten, with the same outputs."""
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert gemm.offered(torch.float32) == ["aten"]
    assert gemm.choice(torch.float32) == "aten"
    assert gemm.status()["float32"]["why"].startswith("the only kernel")
    from zoo import AutoModel

    hf = make_bert(tmp_path / "bert", tokenizer=False)
    model = AutoModel.from_pretrained(tmp_path / "bert").eval()
    ids = torch.randint(5, 90, (3, 11))
    with torch.no_grad():
        assert_outputs_equal(model(input_ids=ids), hf(input_ids=ids), ["last_hidden_state", "pooler_output"])
    assert gemm.status()["packed_bytes"] == 0


def test_zoo_gemm_forces_a_kernel(monkeypatch, caplog):
    monkeypatch.setenv("ZOO_GEMM", "aten")
    assert gemm.choice(torch.float32) == "aten"
    assert gemm.status()["float32"] == {"kernel": "aten", "why": "set by ZOO_GEMM", "gflops": {}}
    gemm._reset_for_tests()
    monkeypatch.setenv("ZOO_GEMM", "fastest-please")
    with caplog.at_level(logging.WARNING, logger="zoo.gemm"):
        chosen = gemm.choice(torch.float32)
    assert "ZOO_GEMM=fastest-please is not one of auto, aten, onednn-packed" in caplog.text
    assert chosen in OFFERED_FP32


def test_measuring_picks_a_kernel_and_reports_its_rates():
    chosen = gemm.choice(torch.float32)
    report = gemm.status()["float32"]
    assert chosen == report["kernel"] in OFFERED_FP32
    assert set(report["gflops"]) == set(OFFERED_FP32)
    assert all(rate > 0 for rate in report["gflops"].values())
    best = max(report["gflops"].values())
    assert report["gflops"][chosen] >= gemm.FUSING_MARGIN * best


def test_a_kernel_that_fails_to_pack_hands_over_to_aten(monkeypatch, caplog):
    if "onednn-packed" not in OFFERED_FP32:
        pytest.skip("no packed oneDNN here")
    force("onednn-packed", torch.float32)

    def broken(weight):
        raise RuntimeError("unsupported weight")

    monkeypatch.setitem(gemm._PACKERS, "onednn-packed", (broken, gemm._PACKERS["onednn-packed"][1]))
    x, w, b = tensors()
    with torch.no_grad(), caplog.at_level(logging.WARNING, logger="zoo.gemm"):
        torch.testing.assert_close(gemm.linear(x, w, b), F.linear(x, w, b))
    assert "failed to pack" in caplog.text
    assert gemm.choice(torch.float32) == "aten"


@pytest.mark.skipif("onednn-packed" not in gemm.offered(torch.bfloat16), reason="no packed oneDNN bf16 here")
def test_a_weight_made_under_inference_mode_is_packed_too():
    force("onednn-packed")
    with torch.inference_mode():
        w = torch.randn(40, 48).bfloat16()
        x = torch.randn(6, 48).bfloat16()
        assert torch.equal(gemm.linear(x, w), F.linear(x, w))
    assert gemm.choice(torch.bfloat16) == "onednn-packed"
    assert gemm.status()["packed_bytes"] == 40 * 48 * 2


# --- several projections of one input as one product --------------------------------------------------------------

def three_linears(dtype=torch.float32, bias=True):
    torch.manual_seed(3)
    return [Linear(48, n, bias=bias).to(dtype) for n in (48, 16, 16)]


@pytest.mark.parametrize("kernel", OFFERED_FP32)
@pytest.mark.parametrize("bias", [True, False])
def test_project_equals_each_module_in_float32(kernel, bias):
    from zoo.layers import project

    force(kernel)
    modules = three_linears(bias=bias)
    x = torch.randn(3, 7, 48)
    with torch.no_grad():
        outputs = project(x, *modules)
        for out, module in zip(outputs, modules):
            torch.testing.assert_close(out, F.linear(x, module.weight, module.bias), atol=1e-5, rtol=1e-5)
        modules[1].weight.add_(1.0)  # one of the stack changed in place: the stack is re-made
        torch.testing.assert_close(project(x, *modules)[1], F.linear(x, modules[1].weight, modules[1].bias),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.skipif("onednn-packed" not in gemm.offered(torch.bfloat16), reason="no packed oneDNN bf16 here")
def test_project_is_bit_identical_in_bfloat16():
    from zoo.layers import project

    force("onednn-packed")
    modules = three_linears(torch.bfloat16)
    x = torch.randn(5, 48).bfloat16()
    with torch.no_grad():
        for out, module in zip(project(x, *modules), modules):
            assert torch.equal(out, F.linear(x, module.weight, module.bias))
    assert any(len(key) > 1 for key in gemm._packed)  # it did run as one product


def test_project_calls_swapped_or_hooked_modules():
    from zoo.layers import project

    force(OFFERED_FP32[-1])
    modules = three_linears()
    seen = []
    modules[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    swapped = torch.nn.Sequential(torch.nn.Linear(48, 16))  # e.g. a wrapper a user put in place of k
    x = torch.randn(4, 48)
    with torch.no_grad():
        q, k, v = project(x, modules[0], swapped, modules[2])
        assert seen == [torch.Size([4, 48])]
        torch.testing.assert_close(k, swapped(x))
    assert not any(len(key) > 1 for key in gemm._packed)
