"""zoo.chat.tools.get_json_schema against transformers' get_json_schema, on functions that use every kind of hint.

The functions here are also the tools tests/test_chat_template.py renders with each published template.
"""

from __future__ import annotations

import enum
import inspect
from typing import Literal

import pytest

from zoo.chat.tools import get_json_schema, parse_google_docstring
from zoo.errors import ChatTemplateError

hf_chat_utils = pytest.importorskip("transformers.utils.chat_template_utils")


class Unit(str, enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


def current_weather(city: str, unit: Unit = Unit.CELSIUS, days: int | None = None) -> dict[str, float]:
    """
    Get the current weather in a city.

    Args:
        city: The city, e.g. Paris
        unit: The unit of temperature
        days (int): How many days ahead,
            counted from today
    Returns:
        Temperature and humidity
    """
    return {}


def pick(drink: str, sizes: list[int], pair: tuple[str, float], extra: dict[str, bool], mode: Literal["a", 1]) -> None:
    """Pick a drink.

    Args:
        drink: The drink (choices: ["tea", "coffee"])
        sizes: Sizes in ml
        pair: A name and a weight
        extra: Flags
        mode: A mode
    """


class Toolbox:
    def lookup(self, query: str | list[str]) -> str:
        """Look something up.

        Args:
            query: What to look for
        """
        return query


def no_docstring(x: int):
    return x


def undocumented_argument(x: int, y: int):
    """Adds.

    Args:
        x: The first number
    """


def untyped(x):
    """Echo.

    Args:
        x: anything
    """


def custom_class(x: Toolbox):
    """Use a toolbox.

    Args:
        x: a toolbox
    """


@pytest.mark.parametrize("func", [current_weather, pick, Toolbox().lookup, no_docstring, undocumented_argument,
                                  untyped, custom_class], ids=lambda f: f.__name__)
def test_get_json_schema_matches_transformers(func):
    try:
        expected = hf_chat_utils.get_json_schema(func)
    except Exception:  # noqa: BLE001 - transformers' own exception types
        with pytest.raises(ChatTemplateError):
            get_json_schema(func)
        return
    assert get_json_schema(func) == expected


def test_docstring_sections_are_split_as_transformers_splits_them():
    doc = inspect.getdoc(current_weather)
    assert parse_google_docstring(doc) == hf_chat_utils.parse_google_format_docstring(doc)
    description, arguments, returns = parse_google_docstring(doc)
    assert description == "Get the current weather in a city."
    assert arguments["days"] == "How many days ahead, counted from today" and returns == "Temperature and humidity"


def test_refusals_name_the_function_and_the_fix():
    with pytest.raises(ChatTemplateError, match="undocumented_argument.*'y'.*Args: block"):
        get_json_schema(undocumented_argument)
    with pytest.raises(ChatTemplateError, match="untyped.*'x' has no type hint"):
        get_json_schema(untyped)
    with pytest.raises(ChatTemplateError, match="no_docstring: it has no docstring"):
        get_json_schema(no_docstring)
