"""The one list of compatibility idioms, and the few helpers idioms share.

An idiom is a plain function ``idiom(lib, ckpt) -> result``, written once in transformers' spelling
(``lib.AutoTokenizer``, ``lib.GPT2LMHeadModel``, ``lib.set_seed``): ``lib`` is the ``transformers`` module or the
``zoo`` module, ``ckpt`` the session's :class:`tests.compat.checkpoints.Checkpoints`. ``@idiom`` appends it to
``IDIOMS``; tests/compat/test_idioms.py runs every entry with both libraries and compares the results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

IDIOMS: list[Callable[..., Any]] = []


def idiom(function: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``function`` as an idiom (its name is the test id, so it must be unique)."""
    assert function.__name__ not in {f.__name__ for f in IDIOMS}, f"two idioms are named {function.__name__}"
    IDIOMS.append(function)
    return function


def fields(obj: Any, *names: str) -> dict[str, Any]:
    """The named attributes of an output object, as a dict: idioms compare what both libraries define, by name."""
    return {name: getattr(obj, name) for name in names}


def raised(call: Callable[[], Any], message: str) -> tuple[str, bool]:
    """What a call that should fail did: ("error", whether the error text carries ``message``) when it raised,
    ("no error", False) when it did not. Libraries raise different classes; what a user sees is that it failed, and
    why (a template's own raise_exception text must reach the user in both)."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the family, not the class, is what both libraries share
        return "error", message in str(error)
    return "no error", False


def grads(model: Any) -> dict[str, Any]:
    """Every parameter's gradient, by name (parameter names equal the checkpoint keys in both libraries)."""
    return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
