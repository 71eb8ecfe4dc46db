"""The limits on what a caller may name: one place, checked before anything reaches the
database, the same on SQLite and PostgreSQL.

A value outside its limit is ``400 invalid_request``; the refusal names the field and the
rule, and shows at most :data:`SHOWN` characters of the value, so that neither the problem
document nor the audit entry of the refusal carries a caller's megabytes. Views check
their identifiers first and put only checked values into the audit entry.

| field | rule |
|---|---|
| ``record_id`` | 1 to 256 characters; letters, digits, punctuation, symbols and inner spaces (``/`` too: ``encounter/123/discharge``); no control, format, surrogate, private-use or unassigned character (NUL, bidi overrides, zero-width spaces), no line break, no space at either end |
| ``key`` (key alias) | 1 to 64 characters: ASCII letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit |
| ``field`` (PDF signature field) | 1 to 64 characters: letters, digits, ``_``, ``-`` and inner spaces (a PDF partial field name: no ``.``) |
| ``reason``, ``location`` | at most 256 characters, no control or format character |
| ``Idempotency-Key`` | 1 to 255 printable ASCII characters |
| signing session id | 1 to 64 characters of ``A-Z a-z 0-9 _ -`` (anything else is not a session: 404) |
| member names of a JSON body | only the documented ones; unknown names are shown cut short |
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from typing import Any

from kyso.config import KEY_ALIAS
from kyso.errors import InvalidRequest

MAX_RECORD_ID = 256
MAX_KEY_ALIAS = 64  # kyso.config.KEY_ALIAS: configured aliases follow the same rule
MAX_FIELD_NAME = 64
MAX_TEXT = 256  # reason, location
MAX_IDEMPOTENCY_KEY = 255
MAX_SESSION_ID = 64
SHOWN = 40  # characters of a refused value shown back

FIELD_NAME = re.compile(rf"[^\W][\w -]{{0,{MAX_FIELD_NAME - 1}}}")
SESSION_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_SESSION_ID}}}")
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")


def shown(value: Any, limit: int = SHOWN) -> str:
    """``repr(value)``, cut to about ``limit`` characters: safe to put in a message."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit + 2 else f"{text[:limit]}... (cut)"


def _bad_character(text: str, allow_space: bool = True) -> str | None:
    """The first character of ``text`` that no identifier or name may hold, if any."""
    for char in text:
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp") or (char != " " and category == "Zs"):
            return char
        if char == " " and not allow_space:
            return char
    return None


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name!r} must be a string, not {type(value).__name__}")
    return value


def record_id(value: Any, name: str = "record_id") -> str | None:
    """A record identifier as the registry keeps it, or None when none was given."""
    if value is None:
        return None
    text = _string(name, value)
    if not 1 <= len(text) <= MAX_RECORD_ID:
        raise InvalidRequest(
            f"{name!r} must have 1 to {MAX_RECORD_ID} characters, not {len(text)}"
        )
    bad = _bad_character(text)
    if bad is not None:
        raise InvalidRequest(
            f"{name!r} may not contain the character U+{ord(bad):04X} "
            "(control, format, line break or unassigned characters are refused)"
        )
    if text != text.strip(" "):
        raise InvalidRequest(f"{name!r} may not begin or end with a space")
    return text


def key_alias(value: Any, name: str = "key") -> str:
    """A key alias: the name of a configured key (see :data:`KEY_ALIAS`)."""
    text = _string(name, value)
    if not KEY_ALIAS.fullmatch(text):
        raise InvalidRequest(
            f"{name!r} must be a key alias of 1 to {MAX_KEY_ALIAS} ASCII letters, digits, "
            f"'.', '_' or '-', not {shown(text)}"
        )
    return text


def field_name(value: Any, name: str = "field") -> str | None:
    """A PDF signature field name (a partial name: no '.'), or None."""
    if value is None:
        return None
    text = _string(name, value)
    if not FIELD_NAME.fullmatch(text) or text.endswith(" "):
        raise InvalidRequest(
            f"{name!r} must be a field name of 1 to {MAX_FIELD_NAME} letters, digits, '_', '-' "
            f"or inner spaces, not {shown(text)}"
        )
    return text


def text(value: Any, name: str) -> str | None:
    """A short free text (``reason``, ``location``) shown in a signature, or None."""
    if value is None:
        return None
    value = _string(name, value)
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"{name!r} must have at most {MAX_TEXT} characters, not {len(value)}")
    bad = next((c for c in value if unicodedata.category(c)[0] == "C"), None)
    if bad is not None:
        raise InvalidRequest(f"{name!r} may not contain the control character U+{ord(bad):04X}")
    return value


def choice(value: Any, name: str, allowed: Collection[str]) -> str:
    """One of ``allowed`` (a level, a scheme)."""
    if value not in allowed:
        raise InvalidRequest(f"{name!r} must be one of {', '.join(allowed)}, not {shown(value)}")
    return str(value)


def idempotency_key(value: str) -> str:
    """An ``Idempotency-Key`` header value."""
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return value


def is_session_id(value: str) -> bool:
    """Whether ``value`` can be a signing session id at all."""
    return SESSION_ID.fullmatch(value) is not None


def only_members(body: dict[str, Any], allowed: Iterable[str], where: str = "") -> None:
    """Refuse members of a JSON object that are not among ``allowed``."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        names = ", ".join(shown(n) for n in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise InvalidRequest(f"{where}unknown member(s) {names}")
