"""The audit entry: its members, its hash, its time format, and a check of its shape (SPEC 7).

An entry is a JSON object with exactly the members of :data:`ENTRY_FIELDS`. Its hash is
the RFC 9162 leaf hash of its JCS bytes, ``SHA-256(0x00 || JCS(entry))``; the same hash is
the next entry's ``prev_hash`` and the entry's leaf in the Merkle tree. The export writes
each entry as exactly those JCS bytes (:func:`entry_line`), so a line's hash is the leaf.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from kyso.formats import MAX_SAFE_INTEGER, canonical_json

ENTRY_FIELDS: tuple[str, ...] = (
    "seq",
    "time",
    "actor",
    "action",
    "key",
    "record_id",
    "document_sha256",
    "signature_sha256",
    "outcome",
    "detail",
    "prev_hash",
)

OUTCOMES: tuple[str, ...] = ("ok", "denied", "error")

# The prev_hash of seq 0: there is no earlier entry.
GENESIS_PREV_HASH = "0" * 64

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Members whose value is a string or null; action, time and prev_hash must be strings.
_OPTIONAL_TEXT = ("actor", "key", "record_id")
_OPTIONAL_HEX = ("document_sha256", "signature_sha256")


def entry_hash(entry: dict[str, Any]) -> bytes:
    """The 32-byte entry hash: SHA-256(0x00 || JCS(entry)), the RFC 9162 leaf hash."""
    return hashlib.sha256(b"\x00" + canonical_json(entry)).digest()


def entry_hash_hex(entry: dict[str, Any]) -> str:
    """The entry hash as 64 lowercase hex digits, as ``prev_hash`` and the API show it."""
    return entry_hash(entry).hex()


# The standard library's encoder writes what JCS writes for the values :func:`_plain` allows:
# keys sorted (code point order is UTF-16 order for ASCII keys), integers in decimal, no
# whitespace, strings as UTF-8 with only '"', '\\' and control characters escaped, the
# latter as \b \t \n \f \r or \u00xx in lowercase. Floats are where they part.
_PLAIN_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def entry_canonical(entry: dict[str, Any]) -> bytes:
    """The JCS bytes of ``entry``, as :func:`~kyso.formats.canonical_json` makes them,
    about ten times faster for an entry of plain values (its hot path when appending):
    strings, safe integers, booleans, null, and objects with ASCII keys and arrays of those.
    Anything else (a float, a non-ASCII key) goes through the RFC 8785 library."""
    if _plain(entry):
        try:
            return _PLAIN_JSON.encode(entry).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the library refuse it
            pass
    return canonical_json(entry)


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


def line_hash(line: bytes) -> bytes:
    """The entry hash of an export line that already holds the entry's JCS bytes."""
    return hashlib.sha256(b"\x00" + line).digest()


def entry_line(entry: dict[str, Any]) -> bytes:
    """The export line of an entry: its JCS bytes and a newline (JSON Lines)."""
    return canonical_json(entry) + b"\n"


def format_time(dt: datetime) -> str:
    """``dt`` in UTC with microseconds, as entries carry it: ``2026-01-01T00:00:00.000000Z``.

    A naive datetime is refused (``ValueError``): its zone is unknown, and guessing would
    put a wrong time into a log that cannot be corrected later.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_time needs an aware datetime, e.g. datetime.now(UTC)")
    return dt.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of an entry ``time`` string (inverse of :func:`format_time`)."""
    if not _TIME.fullmatch(text):
        raise ValueError(f"time {text!r} is not of the form 2026-01-01T00:00:00.000000Z")
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def validate_entry_shape(entry: Any) -> list[str]:
    """Every way ``entry`` departs from the entry format; an empty list when it conforms.

    Checks the member set (exactly :data:`ENTRY_FIELDS`), each member's type, the hex
    hashes (64 lowercase hex digits or null), the time format and the outcome. ``detail``
    must be an object (``{}`` when there is nothing to add).
    """
    if not isinstance(entry, dict):
        return [f"entry must be a JSON object, not {_json_type(entry)}"]
    problems = _member_problems(entry)
    checks = (
        (_seq_problem, "seq"),
        (_time_problem, "time"),
        (_action_problem, "action"),
        (_outcome_problem, "outcome"),
        (_detail_problem, "detail"),
        (_prev_hash_problem, "prev_hash"),
    )
    for check, name in checks:
        if name in entry and (problem := check(entry[name])):
            problems.append(problem)
    for name in _OPTIONAL_TEXT:
        if name in entry and not (entry[name] is None or isinstance(entry[name], str)):
            problems.append(f"{name} must be a string or null, not {_json_type(entry[name])}")
    for name in _OPTIONAL_HEX:
        value = entry.get(name)
        if name in entry and value is not None and not _is_hex64(value):
            problems.append(f"{name} must be 64 lowercase hex digits or null")
    return problems


def _member_problems(entry: dict[str, Any]) -> list[str]:
    """Missing and unexpected members, by name."""
    problems = []
    missing = [name for name in ENTRY_FIELDS if name not in entry]
    extra = sorted(str(name) for name in entry if name not in ENTRY_FIELDS)
    if missing:
        problems.append("missing member(s): " + ", ".join(missing))
    if extra:
        problems.append("unexpected member(s): " + ", ".join(extra))
    return problems


def _seq_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"seq must be an integer, not {_json_type(value)}"
    if not 0 <= value <= MAX_SAFE_INTEGER:
        return f"seq {value} is out of range"
    return None


def _time_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"time must be a string, not {_json_type(value)}"
    try:
        parse_time(value)
    except ValueError:
        return f"time {value!r} is not a UTC time of the form 2026-01-01T00:00:00.000000Z"
    return None


def _action_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "action must be a non-empty string"
    return None


def _outcome_problem(value: Any) -> str | None:
    if value not in OUTCOMES:
        return f"outcome must be one of {', '.join(OUTCOMES)}, not {value!r}"
    return None


def _detail_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"detail must be an object, not {_json_type(value)}"
    return None


def _prev_hash_problem(value: Any) -> str | None:
    if not _is_hex64(value):
        return "prev_hash must be 64 lowercase hex digits"
    return None


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
