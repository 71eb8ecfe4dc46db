"""The clinician's side of a PKCS#11 token: what it holds, and signing a batch under one PIN.

:func:`list_tokens` reads what a token shows without a PIN (certificates and public
objects); :func:`certificate_chain` puts one of its certificates first and the issuers the
token also holds after it, as a signing session wants them; :func:`sign_many` signs a
session's documents under ONE login.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asn1crypto import pem, x509
from pkcs11 import Attribute, ObjectClass, TokenFlag
from pkcs11.exceptions import PKCS11Error

from kyso.errors import InvalidRequest, TokenUnavailable
from kyso.keystore.base import Scheme
from kyso.keystore.pkcs11 import key_type_of, needs_login_each_time, signing_plan, token_sign
from kyso.keystore.pkcs11_session import (
    TokenFailure,
    describe,
    find_private_key,
    find_token_or_rescan,
    initialised_module,
    login,
    process_lock,
)


def list_tokens(module_path: str) -> list[dict[str, Any]]:
    """Every present token of the module, with what it shows without a PIN.

    Each entry: ``slot_id``, ``slot_description``, ``token_label``, ``manufacturer``, ``model``,
    ``serial``, ``flags`` (names), ``certificates`` (``label``, ``id`` hex, ``subject``,
    ``not_after`` ISO 8601), ``public_keys`` and ``private_keys`` (``label``, ``id``,
    ``key_type``; private keys are usually hidden until login).
    """
    with process_lock():
        try:
            lib = initialised_module(module_path)
            return [_describe_slot(slot) for slot in lib.get_slots(token_present=True)]
        except TokenFailure as failure:
            raise TokenUnavailable(f"module {module_path!r}: {failure.reason}") from None
        except PKCS11Error as exc:
            raise TokenUnavailable(f"module {module_path!r}: {describe(exc)}") from None


def _describe_slot(slot: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"slot_id": slot.slot_id, "slot_description": slot.slot_description}
    try:
        token = slot.get_token()
    except PKCS11Error as exc:
        return entry | {"error": describe(exc)}
    entry |= {
        "token_label": token.label,
        "manufacturer": token.manufacturer_id,
        "model": token.model,
        "serial": token.serial.decode("ascii", "replace"),
        "flags": [flag.name for flag in TokenFlag if flag and token.flags & flag == flag],
        "certificates": [],
        "public_keys": [],
        "private_keys": [],
    }
    if token.flags & TokenFlag.TOKEN_INITIALIZED:
        try:
            session = token.open()  # no login: only public objects (and no C_Logout on close)
            try:
                entry |= _public_objects(session)
            finally:
                session.close()
        except PKCS11Error as exc:
            entry["error"] = describe(exc)
    return entry


def _public_objects(session: Any) -> dict[str, list[dict[str, Any]]]:
    """Certificates and keys visible in ``session``."""
    found: dict[str, list[dict[str, Any]]] = {
        "certificates": [],
        "public_keys": [],
        "private_keys": [],
    }
    for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
        certificate = x509.Certificate.load(obj[Attribute.VALUE])
        found["certificates"].append(
            {
                "label": obj[Attribute.LABEL],
                "id": _object_id(obj),
                "subject": certificate.subject.human_friendly,
                "issuer": certificate.issuer.human_friendly,
                "not_after": certificate.not_valid_after.isoformat(),
                "ca": bool(certificate.ca),
                "pem": pem.armor("CERTIFICATE", certificate.dump()).decode("ascii"),
            }
        )
    for object_class, name in (
        (ObjectClass.PUBLIC_KEY, "public_keys"),
        (ObjectClass.PRIVATE_KEY, "private_keys"),
    ):
        for obj in session.get_objects({Attribute.CLASS: object_class}):
            found[name].append(
                {"label": obj[Attribute.LABEL], "id": _object_id(obj), "key_type": key_type_of(obj)}
            )
    return found


def _object_id(obj: Any) -> str:
    try:
        return bytes(obj[Attribute.ID]).hex()
    except PKCS11Error:
        return ""


def sign_many(
    module_path: str,
    token_label: str,
    key_label: str,
    pin: str,
    items: Sequence[tuple[bytes, Scheme]],
) -> list[bytes]:
    """SHA-256 signatures of every ``(data, scheme)`` under ONE login, in order.

    For the clinician's ``kyso token sign-session``. ECDSA values are returned raw ``r||s``,
    as PKCS#11 gives them (the service accepts raw or DER); RSA values as they are.
    """
    with process_lock():
        try:
            return _sign_all(module_path, token_label, key_label, pin, items)
        except TokenFailure as failure:
            reason = failure.reason
        except PKCS11Error as exc:
            reason = describe(exc)
    raise TokenUnavailable(f"token {token_label!r}: token unavailable ({reason})")


def _sign_all(
    module_path: str,
    token_label: str,
    key_label: str,
    pin: str,
    items: Sequence[tuple[bytes, Scheme]],
) -> list[bytes]:
    token = find_token_or_rescan(module_path, token_label)
    session = login(token, lambda: pin)
    try:
        key = find_private_key(session, key_label)
        key_type, always_authenticate = key_type_of(key), needs_login_each_time(key)
        mechanisms = frozenset(token.slot.get_mechanisms())
        return [
            token_sign(
                key,
                signing_plan(key_type, scheme, data, mechanisms),
                lambda: pin,
                always_authenticate,
            )
            for data, scheme in items
        ]
    finally:
        try:
            session.close()  # logs out when this call logged in
        except PKCS11Error:
            pass


def certificate_chain(entry: dict[str, Any], label: str | None = None) -> list[str]:
    """PEM certificates of one token entry (of :func:`list_tokens`): the signer's certificate
    (the one labelled ``label``, or the token's only end-entity certificate) first, then each
    issuer the token holds, in order up the chain."""
    certificates = entry.get("certificates", [])
    leaves = [c for c in certificates if (c["label"] == label if label else not c["ca"])]
    if len(leaves) != 1:
        names = ", ".join(repr(c["label"]) for c in certificates) or "none"
        raise InvalidRequest(
            f"token {entry.get('token_label')!r}: name the signer's certificate with --label "
            f"(certificates on the token: {names})"
        )
    chain = [leaves[0]]
    by_subject = {c["subject"]: c for c in certificates if c["ca"]}
    while chain[-1]["issuer"] in by_subject and chain[-1]["issuer"] != chain[-1]["subject"]:
        issuer = by_subject[chain[-1]["issuer"]]
        if issuer in chain:
            break
        chain.append(issuer)
    return [c["pem"] for c in chain]
