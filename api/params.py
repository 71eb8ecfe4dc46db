"""Query parameters one by one, parsed strictly: a bad value is a 400 that names it.

The views of :mod:`kyso.api` read their query strings whole, through a model
(:func:`kyso.api.models.parse_query`), so that the OpenAPI document describes them; what is
left here is :func:`box_of`, the part of ``box`` that no schema can check (x2 > x1)."""

from __future__ import annotations

import math

from flask import request

from kyso.errors import InvalidRequest

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


def query_str(name: str, required: bool = False, max_len: int = 1024) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"query parameter {name!r} is required")
        return None
    if len(value) > max_len:
        raise InvalidRequest(f"query parameter {name!r} is longer than {max_len} characters")
    return value


def parse_bool(name: str) -> bool:
    value = request.args.get(name, "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidRequest(f"query parameter {name!r} must be true or false")


def parse_int(name: str, default: int, minimum: int = 0) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be an integer") from None
    if number < minimum:
        raise InvalidRequest(f"query parameter {name!r} must be at least {minimum}")
    return number


def parse_box(name: str) -> tuple[float, float, float, float] | None:
    return box_of(request.args.get(name), name)


def box_of(value: str | None, name: str = "box") -> tuple[float, float, float, float] | None:
    """``x1,y1,x2,y2`` in PDF points (``None`` for none); the second corner above and right
    of the first."""
    if not value:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be x1,y1,x2,y2 in PDF points") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise InvalidRequest(f"query parameter {name!r} must be four finite numbers")
    if x2 <= x1 or y2 <= y1:
        raise InvalidRequest(f"query parameter {name!r}: x2 must exceed x1 and y2 must exceed y1")
    return (x1, y1, x2, y2)
