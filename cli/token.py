"""``kyso token``: the clinician's side of two-step signing, on the clinician's own workstation.

``kyso token list --module M`` shows the tokens a PKCS#11 module offers, with their
certificates and keys. ``kyso token sign-session SESSION.json --module M --token-label L
--key-label K`` signs every document of a signing session (the answer of
``POST /api/v1/signing-sessions``) on the local token under ONE PIN entry, and prints
``{"signatures": [...]}`` (base64, in document order) for ``POST .../complete``.

The PIN is asked for without echo, or taken from ``KYSO_TOKEN_PIN``; never an argument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import IO, Any

import click

from kyso.keystore.base import Scheme

PIN_ENV = "KYSO_TOKEN_PIN"


@click.group()
def token() -> None:
    """A clinician's PKCS#11 token (USB token, smart card): list it, sign a session with it."""


@token.command("list")
@click.option(
    "--module", required=True, help="PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so"
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--pem",
    is_flag=True,
    help="Print the signer's certificate, then the issuers the token holds, as PEM: the "
    "certificate_chain of a signing session (add your CA's intermediate if the token lacks it).",
)
@click.option("--token-label", default=None, help="With --pem: the token (if there are several).")
@click.option("--label", default=None, help="With --pem: the certificate's label (if there are several).")
def token_list(module: str, as_json: bool, pem: bool, token_label: str | None, label: str | None) -> None:
    """List the tokens of a PKCS#11 module, with their certificates and keys (no PIN needed)."""
    from kyso.keystore.pkcs11_tokens import certificate_chain, list_tokens

    tokens = list_tokens(module)
    if pem:
        chosen = [t for t in tokens if "token_label" in t and token_label in (None, t["token_label"])]
        if len(chosen) != 1:
            names = ", ".join(repr(t.get("token_label")) for t in tokens) or "none"
            raise click.UsageError(f"name one token with --token-label (tokens present: {names})")
        click.echo("".join(certificate_chain(chosen[0], label)), nl=False)
        return
    if as_json:
        click.echo(json.dumps({"tokens": tokens}, ensure_ascii=False, indent=2))
        return
    if not tokens:
        click.echo(f"no token is present in {module}")
    for entry in tokens:
        click.echo("\n".join(_describe_token(entry)))


def _describe_token(entry: dict[str, Any]) -> list[str]:
    """Text lines for one slot of :func:`kyso.keystore.pkcs11_tokens.list_tokens`."""
    if "token_label" not in entry:
        return [f"slot {entry['slot_id']}: {entry.get('error', 'no readable token')}"]
    if "TOKEN_INITIALIZED" not in entry["flags"]:
        return [f"slot {entry['slot_id']}: a token that is not initialised yet"]
    lines = [
        f"token {entry['token_label']!r} (slot {entry['slot_id']}; {entry['manufacturer']} {entry['model']}, "
        f"serial {entry['serial']})"
    ]
    for cert in entry["certificates"]:
        lines.append(f"  certificate {cert['label']!r} id {cert['id'] or '-'}: {cert['subject']}")
        lines.append(f"    valid until {cert['not_after']}")
    for kind, name in (("private_keys", "private key"), ("public_keys", "public key")):
        for key in entry[kind]:
            lines.append(f"  {name} {key['label']!r} id {key['id'] or '-'} ({key['key_type']})")
    if not entry["private_keys"]:
        lines.append("  (private keys are shown only after login; sign-session logs in)")
    if "error" in entry:
        lines.append(f"  error: {entry['error']}")
    return lines


@token.command("sign-session")
@click.argument("session_file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--module", required=True, help="PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so"
)
@click.option("--token-label", required=True, help="Label of the token (see 'kyso token list').")
@click.option("--key-label", required=True, help="Label of the signing key on the token.")
def sign_session(session_file: IO[str], module: str, token_label: str, key_label: str) -> None:
    """Sign every document of SESSION_FILE (the session answer; '-' for stdin) on the token,
    under one PIN entry, and print {"signatures": [...]} for .../complete."""
    from kyso.keystore.pkcs11_tokens import sign_many

    session = _read_session(session_file)
    items = [to_sign(index, doc) for index, doc in enumerate(session["documents"])]
    click.echo(
        f"signing {len(items)} document(s) of session {session.get('id', '?')} with key {key_label!r} "
        f"on token {token_label!r}:",
        err=True,
    )
    for doc, (data, _) in zip(session["documents"], items, strict=True):
        record = doc.get("record_id") or "(no record id)"
        click.echo(
            f"  {record}  {doc['algorithm']}  sha256 {hashlib.sha256(data).hexdigest()}", err=True
        )
    signatures = sign_many(module, token_label, key_label, read_pin(), items)
    click.echo(
        json.dumps({"signatures": [base64.b64encode(s).decode("ascii") for s in signatures]})
    )


def read_pin() -> str:
    """The token PIN: from KYSO_TOKEN_PIN, or asked for without echo (a line on standard
    input when it is not a terminal)."""
    pin = os.environ.get(PIN_ENV)
    if pin:
        return pin
    try:
        return click.prompt("PIN", hide_input=True, err=True)
    except click.Abort:  # end of input: no terminal, nothing piped in
        raise click.UsageError(
            f"the token PIN is needed: run this in a terminal to be asked for it, or set "
            f"{PIN_ENV}; nothing was signed"
        ) from None


def _read_session(handle: IO[str]) -> dict[str, Any]:
    try:
        session = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"the session file is not JSON: {exc}") from None
    documents = session.get("documents") if isinstance(session, dict) else None
    if (
        not isinstance(documents, list)
        or not documents
        or not all(isinstance(d, dict) for d in documents)
    ):
        raise click.UsageError(
            "the session file has no 'documents' list (it is the answer of POST /signing-sessions)"
        )
    return session


def to_sign(index: int, doc: dict[str, Any]) -> tuple[bytes, Scheme]:
    """(data_to_sign, keystore scheme) of one document, its digest checked."""
    from kyso.signer.algorithms import ALGORITHMS

    algorithm = ALGORITHMS.get(doc.get("algorithm"))  # type: ignore[arg-type]
    if algorithm is None:
        raise click.UsageError(
            f"documents[{index}]: unknown algorithm {doc.get('algorithm')!r} (known: {', '.join(ALGORITHMS)})"
        )
    try:
        data = base64.b64decode(doc["data_to_sign"], validate=True)
        digest = base64.b64decode(doc["digest"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise click.UsageError(
            f"documents[{index}]: data_to_sign and digest must be base64"
        ) from None
    if hashlib.sha256(data).digest() != digest:
        raise click.UsageError(
            f"documents[{index}]: digest is not the SHA-256 of data_to_sign; the file is damaged"
        )
    return data, algorithm.scheme
