"""A tool's arguments, checked as its inputSchema says before anything is
sent to memosd.

Hosts do not all validate arguments against the schema, and a model can
write anything, so each read checks the type and range it needs and fails
with InvalidArguments, whose message names the argument: the model reads it
and can correct its call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from .timestamps import BadTime, parse_time


class InvalidArguments(ValueError):
    pass


class Arguments:
    """Reads a tool call's `arguments` object. Every name must be one the
    tool takes (`known`): a misspelt option would otherwise be dropped
    silently and the call would do something else than asked."""

    def __init__(self, values: dict[str, Any], known: Iterable[str]) -> None:
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidArguments(f"unknown argument(s): {', '.join(unknown)}; "
                                   f"this tool takes {', '.join(sorted(known)) or 'none'}")
        self.values = values

    def has(self, name: str) -> bool:
        return self.values.get(name) is not None

    def string(self, name: str, *, required: bool = False, default: str = "",
               allow_empty: bool = True) -> str:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise InvalidArguments(f"{name} must be a string")
        _check_text(name, value)
        if not allow_empty and not value.strip():
            raise InvalidArguments(f"{name} must not be empty")
        return value

    def strings(self, name: str, *, required: bool = False) -> list[str]:
        value = self._get(name, required)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArguments(f"{name} must be an array of strings")
        for v in value:
            _check_text(name, v)
        return value

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidArguments(f"{name} must be an object whose values are strings")
        for key, v in value.items():
            _check_text(name, key)
            _check_text(name, v)
        return value

    def integer(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        value = self._get(name, False)
        if value is None:
            return default
        # JSON has one number type: 5.0 is a fine integer, 5.5 is not.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArguments(f"{name} must be an integer")
        if not minimum <= value <= maximum:
            raise InvalidArguments(f"{name} must be between {minimum} and {maximum}")
        return value

    def number(self, name: str, *, default: float, minimum: float, maximum: float) -> float:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArguments(f"{name} must be a number")
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise InvalidArguments(f"{name} must be between {minimum} and {maximum}")
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self._get(name, False)
        if value is None:
            return None
        if value not in choices:
            raise InvalidArguments(f"{name} must be one of {', '.join(choices)}")
        return value

    def time(self, name: str) -> int:
        """Epoch milliseconds; 0 when not given (memosd's "no bound")."""
        value = self._get(name, False)
        if value is None:
            return 0
        try:
            return parse_time(value)
        except BadTime as e:
            raise InvalidArguments(f"{name}: {e}") from None

    def item_id(self, name: str, parse: Callable[[str], int], *, required: bool = True) -> int:
        """An item id in its 13-character text form, as `parse` reads it;
        0 when optional and not given."""
        text = self.string(name, required=required)
        if not text:
            if required:
                raise InvalidArguments(f"{name} must not be empty")
            return 0
        try:
            return parse(text.strip())
        except Exception:  # the parser's own error type: BadRequest
            raise InvalidArguments(f"{name}: {text!r} is not an item id "
                                   "(13 characters, as the tools return them)") from None

    def _get(self, name: str, required: bool) -> Any:
        value = self.values.get(name)
        if value is None and required:
            raise InvalidArguments(f"missing required argument: {name}")
        return value


def _check_text(name: str, value: str) -> None:
    # memosd takes UTF-8 without NUL (the C API passes C strings); a JSON
    # string may hold both a NUL and a lone surrogate.
    if "\0" in value:
        raise InvalidArguments(f"{name} must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArguments(f"{name} is not valid Unicode (a lone surrogate)") from None
