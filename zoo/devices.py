"""Which device to load a model onto: parse what the caller asked for and check that this machine has it.

Checked before any file is read, so a missing GPU is reported as a missing GPU (with the devices that exist), and
never surfaces later as a failure to read the weights onto it.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import DeviceError

_EXAMPLES = "use 'cpu', 'cuda', 'cuda:1', 'mps' or 'auto'"


def _mps_available(torch: Any) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The devices torch can use here, e.g. ``["cpu", "cuda:0", "cuda:1"]``."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available(torch):
        out.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        out += [f"xpu:{i}" for i in range(xpu.device_count())]
    return out


def resolve_device(device: Any = None) -> Any:
    """``None`` -> cpu; ``"auto"`` -> cuda if available, else mps, else cpu; a name, an int (CUDA index) or a
    torch.device -> that device, if this machine has it. Anything else is a DeviceError naming what is available."""
    import torch

    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device.strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise DeviceError(f"device={device!r} is not a device: {_EXAMPLES}")
    if isinstance(device, int):
        if device < 0:
            raise DeviceError(f"device={device} is not a device: a CUDA index is 0 or more; {_EXAMPLES}")
        device = f"cuda:{device}"  # torch.device(int) means the current accelerator, which may be none at all
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"device {device!r} is not a device name torch understands; {_EXAMPLES}") from None
    available = available_devices()
    where = f"available here: {', '.join(available)}"
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} was asked for, but CUDA is not available on this machine ({where}); "
                              f"use device='cpu' or device='auto'")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(f"device {device!r} was asked for, but this machine has {count} CUDA device"
                              f"{'s' if count != 1 else ''} ({where}); use one of those")
        return resolved
    if resolved.type == "mps":
        if not _mps_available(torch):
            raise DeviceError(f"device {device!r} was asked for, but MPS (Apple GPU) is not available on this machine "
                              f"({where}); use device='cpu' or device='auto'")
        return resolved
    if resolved.type == "meta":
        raise DeviceError(f"device 'meta' holds no data, so weights cannot be loaded onto it ({where}); "
                          f"use device='cpu' or device='auto'")
    backend = getattr(torch, resolved.type, None)
    is_available = getattr(backend, "is_available", None)
    if callable(is_available) and is_available():
        return resolved
    raise DeviceError(f"device {device!r} was asked for, but it is not available on this machine ({where}); "
                      f"use device='cpu' or device='auto'")
