"""Small codecs every part shares: RFC 8785 (JCS) canonical JSON and a strict JSON parser to
go with it; ECDSA signature values as DER or raw ``r||s``; base64url.

Every hash kyso computes over JSON (audit entries, JSON payloads before signing) is a hash
of the JCS bytes, so two parties that parse and re-serialise the same document get the
same bytes. Serialisation is the ``rfc8785`` library's; this module only turns its errors
into :class:`~kyso.errors.InvalidJson` and adds the input side that JCS presumes: I-JSON
(RFC 7493) text without duplicate keys, NaN, Infinity, invalid UTF-8 or lone surrogates.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kyso.errors import InvalidJson

# The largest integer an IEEE-754 double holds exactly; JCS (via I-JSON) allows no more.
MAX_SAFE_INTEGER = 2**53 - 1


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``obj`` (dicts, lists, str, int, float, bool, None;
    a typed row of :mod:`kyso.audit.rows` counts as the JSON object it reads as).

    Raises :class:`InvalidJson` for what JCS cannot represent: NaN and infinities, integers
    beyond +-(2**53 - 1), non-string object keys, strings with lone surrogates, and values
    that are not JSON at all (bytes, sets, dates).
    """
    if hasattr(obj, "to_json"):
        obj = obj.to_json()
    try:
        return rfc8785.dumps(obj)
    except rfc8785.IntegerDomainError as exc:
        raise InvalidJson(
            f"integer out of range for canonical JSON ({exc}); integers must lie within "
            f"+-{MAX_SAFE_INTEGER}: send larger numbers as strings"
        ) from exc
    except rfc8785.FloatDomainError as exc:
        raise InvalidJson(
            f"number not representable in JSON ({exc}): NaN and Infinity are not allowed"
        ) from exc
    except rfc8785.CanonicalizationError as exc:
        raise InvalidJson(f"value cannot be written as canonical JSON: {exc}") from exc


def parse_json_strict(data: bytes | str) -> Any:
    """Parse JSON text strictly, as I-JSON (RFC 7493) asks, and return the Python value.

    ``data`` is UTF-8 bytes (or already-decoded text). Rejected with :class:`InvalidJson`:
    invalid UTF-8, a byte order mark, syntax errors, duplicate object keys, the literals
    NaN/Infinity, numbers that overflow a double (1e400), and strings or keys holding lone
    surrogates (``"\\ud800"``), which no UTF-8 text can carry.
    """
    text = _decode_utf8(data)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except InvalidJson:
        raise
    except RecursionError as exc:
        raise InvalidJson("JSON nested too deeply") from exc
    except ValueError as exc:  # json.JSONDecodeError, and int() of over-long digit strings
        raise InvalidJson(f"not valid JSON: {exc}") from exc
    if _SURROGATE_ESCAPE.search(text) or (isinstance(data, str) and not _is_utf8(text)):
        _reject_lone_surrogates(value)  # else none can be in it: no need to walk the value
    return value


# A lone surrogate in a parsed value comes from a \uD800-\uDFFF escape, or from a str input
# that holds one raw (bytes that decoded as UTF-8 cannot).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode_utf8(data: bytes | str) -> str:
    """The text of ``data``, refusing invalid UTF-8 and a leading byte order mark."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson(
                f"not valid UTF-8 at byte {exc.start}: JSON must be UTF-8 encoded"
            ) from exc
    if text.startswith("\ufeff"):
        raise InvalidJson("JSON text starts with a byte order mark; send it without one")
    return text


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a dict from parsed members, refusing a key that appears twice."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidJson(f"duplicate object key {key!r}: each member name may appear once")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    """Refuse the non-standard literals NaN, Infinity and -Infinity."""
    raise InvalidJson(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """Parse a JSON number with a fraction or exponent, refusing one a double cannot hold."""
    value = float(text)
    if math.isinf(value):
        raise InvalidJson(f"number {text} is too large for a double-precision float")
    return value


def _reject_lone_surrogates(value: Any) -> None:
    """Refuse strings (values or keys) that hold a UTF-16 surrogate code point.

    ``json`` turns the escape ``"\\ud800"`` into a lone surrogate, which has no UTF-8 form
    and would only fail later, when the value is hashed or stored. Walks iteratively so a
    deeply nested document cannot exhaust the stack here.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict):
            for key, member in item.items():
                _check_string(key)
                stack.append(member)
        elif isinstance(item, list):
            stack.extend(item)


def _check_string(text: str) -> None:
    """Raise :class:`InvalidJson` if ``text`` has no UTF-8 encoding (a lone surrogate)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidJson(
            f"string contains a lone surrogate (\\u{ord(text[exc.start]):04x}); "
            "escape pairs must form a valid character"
        ) from exc


# -- ECDSA values ---------------------------------------------------------------------


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """``r||s`` (two equal halves, as PKCS#11 and JWS carry them) as a DER ``Ecdsa-Sig-Value``."""
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def ecdsa_der_to_raw(der: bytes, size: int = 32) -> bytes:
    """A DER ``Ecdsa-Sig-Value`` (as CMS carries it) as fixed-width ``r||s`` (RFC 7518 3.4)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_as_der(signature: bytes, size: int) -> bytes:
    """An ECDSA value of a ``size``-byte curve as canonical DER, whether it came raw ``r||s``
    or DER. ValueError when it is neither."""
    if len(signature) == 2 * size:
        return ecdsa_raw_to_der(signature)
    r, s = decode_dss_signature(signature)
    return encode_dss_signature(r, s)


# -- base64url --------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
