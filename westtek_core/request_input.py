"""What both APIs accept from a request: strict JSON, and integers that fit.

Python's ``json`` module takes what a hostile client can use to turn a 400 into a 500 far
from the parser: ``NaN`` and ``Infinity``, ``1e400`` (read as infinity), integers too big
for any database column, lone UTF-16 surrogates (valid JSON escapes that no UTF-8 encoder,
so no database driver, accepts) and nesting deep enough to exhaust the recursion limit.
The server extension and the hub service both read bodies with :func:`parse_json` and
query or path integers with :func:`parse_count`; :class:`BadInput` says in one line what
was wrong, and becomes a 400.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

MAX_DEPTH = 32
"""The deepest nesting of arrays and objects a body may have (reports nest 4 levels)."""

MAX_INT = 2**63 - 1
"""The largest integer accepted: what a signed 64-bit database column holds."""

_SURROGATE = re.compile("[\ud800-\udfff]")


class BadInput(ValueError):
    """A request value that cannot be accepted; ``str()`` says why in one line."""


def _refuse_constant(name: str) -> NoReturn:
    raise BadInput(f"the body is not strict JSON: {name} is not a number JSON allows")


def _checked_int(text: str) -> int:
    # beyond 19 digits it cannot fit; checked before int() parses a huge string
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_INT:
        raise BadInput(f"the body has a number too large: {text[:24]}… does not fit in 64 bits")
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput(f"the body has a number out of range: {text[:24]}")
    return value


def parse_json(data: bytes | str) -> Any:
    """``data`` as JSON, refusing what no stored field may hold; :class:`BadInput` if not.

    Refused: text that is not UTF-8, ``NaN``/``Infinity``, numbers that overflow a double
    or a 64-bit integer, lone surrogates (escaped or not) in strings and keys, and nesting
    deeper than :data:`MAX_DEPTH`.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadInput(f"the body is not UTF-8 (byte {e.start})") from None
    else:
        text = data
    try:
        parsed = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_checked_int,
            parse_float=_checked_float,
        )
    except BadInput:
        raise
    except RecursionError:
        raise BadInput(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise BadInput(f"the body is not JSON: {e}") from None
    _check_tree(parsed)
    return parsed


def _check_tree(value: Any) -> None:
    """Refuse nesting beyond :data:`MAX_DEPTH` and lone surrogates (iteratively)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise BadInput(f"the body nests deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise BadInput("the body has a lone UTF-16 surrogate (\\ud800-\\udfff) in a string")


def parse_count(text: str, name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """A query or path integer from ``minimum`` to ``maximum``; :class:`BadInput` if not.

    Only ASCII digits count: ``str.isdigit`` also takes ``²`` and ``٣``, which ``int()``
    then refuses or reads as another number.
    """
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise BadInput(f"{name} must be an integer from {minimum} to {maximum}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise BadInput(f"{name} must be an integer from {minimum} to {maximum}")
    return value
