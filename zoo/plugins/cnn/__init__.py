"""CNN plugin: registers model_types ``resnet`` and ``simple-cnn`` (hookimpls only; no torch, no model code at import)."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_P = "zoo.plugins.cnn"
#: What ``from zoo import ...`` finds for the CNN family.
RESNET_EXPORTS = {
    "ResNetConfig": f"{_P}.config:ResNetConfig",
    **{name: f"{_P}.resnet:{name}" for name in ("ResNetPreTrainedModel", "ResNetModel", "ResNetForImageClassification")},
    "ConvNextImageProcessor": f"{_P}.processing:ConvNextImageProcessor",
}
SIMPLE_CNN_EXPORTS = {
    "SimpleCNNConfig": f"{_P}.config:SimpleCNNConfig",
    **{name: f"{_P}.simple_cnn:{name}" for name in ("SimpleCNNPreTrainedModel", "SimpleCNNModel",
                                                     "SimpleCNNForImageClassification")},
}


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    register(
        Architecture(
            model_type="resnet",
            config=f"{_P}.config:ResNetConfig",
            models={
                "base": f"{_P}.resnet:ResNetModel",
                "image-classification": f"{_P}.resnet:ResNetForImageClassification",
            },
            image_processor=f"{_P}.processing:resnet_processor",
            exports=RESNET_EXPORTS,
        )
    )
    register(
        Architecture(
            model_type="simple-cnn",
            config=f"{_P}.config:SimpleCNNConfig",
            models={
                "base": f"{_P}.simple_cnn:SimpleCNNModel",
                "image-classification": f"{_P}.simple_cnn:SimpleCNNForImageClassification",
            },
            image_processor=f"{_P}.processing:simple_cnn_processor",
            exports=SIMPLE_CNN_EXPORTS,
        )
    )
