"""``kyso session sign``: one command that signs files with a clinician's token through kyso.

It starts a signing session with the files (PDFs, JSON records) and the certificate chain
read from the token, signs every document on the token under one PIN entry, completes the
session, and writes the signed files. The files travel in the request body, never on a
command line, so scans of any size work. The API key comes from ``KYSO_API_KEY``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import click

API_KEY_ENV = "KYSO_API_KEY"
TIMEOUT = (10, 300)  # connect, read (seconds): a session of large scans takes a while


def _document(path: Path, record_id: str | None) -> dict[str, Any]:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".pdf" or data.startswith(b"%PDF-"):
        return {"record_id": record_id, "pdf": base64.b64encode(data).decode("ascii")}
    if suffix == ".xml":
        return {"record_id": record_id, "xml": base64.b64encode(data).decode("ascii")}
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise click.UsageError(f"{path}: not a PDF, an XML file or a JSON record") from None
    return {"record_id": record_id, "json": payload}


def _post(url: str, api_key: str, body: dict[str, Any]) -> dict[str, Any]:
    import requests

    try:
        response = requests.post(
            url, json=body, headers={"Authorization": f"Bearer {api_key}"}, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        raise click.UsageError(f"cannot reach kyso at {url}: {exc.__class__.__name__}") from None
    if response.status_code >= 400:
        try:
            problem = response.json()
            why = f"{problem.get('code')}: {problem.get('detail')}"
        except ValueError:
            why = response.text[:200]
        raise click.UsageError(f"kyso refused ({response.status_code}) {why}")
    return response.json()


@click.group()
def session() -> None:
    """Signing sessions, from the clinician's workstation."""


@session.command("sign")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", required=True, help="kyso's base URL, e.g. http://kyso.hospital:8080")
@click.option("--module", required=True, help="PKCS#11 module of the token.")
@click.option("--token-label", required=True, help="Label of the token (see 'kyso token list').")
@click.option("--key-label", required=True, help="Label of the signing key on the token.")
@click.option("--label", default=None, help="Label of the signer's certificate, if the token holds several.")
@click.option("--chain", "chain_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM file of issuing CA certificates the token does not hold.")
@click.option("--record-id", "record_ids", multiple=True, help="Record id of each file, in order.")
@click.option("--level", type=click.Choice(["B-B", "B-T"]), default="B-T", show_default=True)
@click.option("--reason", default=None, help="Reason shown in PDF signatures.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where the signed files go.")
def session_sign(files: tuple[Path, ...], url: str, module: str, token_label: str, key_label: str,
                 label: str | None, chain_file: Path | None, record_ids: tuple[str, ...], level: str,
                 reason: str | None, out_dir: Path) -> None:
    """Sign FILES (PDF, JSON) with the token through kyso, and write the signed files to --out."""
    from asn1crypto import pem

    from kyso.cli.token import read_pin, to_sign
    from kyso.keystore.pkcs11_tokens import certificate_chain, list_tokens, sign_many

    api_key = os.environ.get(API_KEY_ENV)
    if not api_key:
        raise click.UsageError(f"set {API_KEY_ENV} to the HIS client's API key")
    if record_ids and len(record_ids) != len(files):
        raise click.UsageError(f"give one --record-id per file ({len(files)}), or none")
    tokens = [t for t in list_tokens(module) if t.get("token_label") == token_label]
    if not tokens:
        raise click.UsageError(f"no token labelled {token_label!r} in {module}")
    chain = certificate_chain(tokens[0], label)
    if chain_file is not None:
        extra = chain_file.read_bytes()
        chain += [pem.armor("CERTIFICATE", der).decode("ascii") for _, _, der in pem.unarmor(extra, multiple=True)]
    documents = [_document(path, record_ids[i] if record_ids else None) for i, path in enumerate(files)]
    base = url.rstrip("/") + "/api/v1/signing-sessions"
    body: dict[str, Any] = {"certificate_chain": chain, "level": level, "documents": documents}
    if reason:
        body["reason"] = reason
    started = _post(base, api_key, body)
    items = [to_sign(index, doc) for index, doc in enumerate(started["documents"])]
    click.echo(f"session {started['id']}: signing {len(items)} file(s) on token {token_label!r}", err=True)
    signatures = sign_many(module, token_label, key_label, read_pin(), items)
    encoded = [base64.b64encode(s).decode("ascii") for s in signatures]
    done = _post(f"{base}/{started['id']}/complete", api_key, {"signatures": encoded})
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, result in zip(files, done["documents"], strict=True):
        if "pdf" in result:
            target = out_dir / f"{path.stem}.signed.pdf"
            target.write_bytes(base64.b64decode(result["pdf"]))
        elif "xml" in result:
            target = out_dir / f"{path.stem}.signed.xml"
            target.write_bytes(base64.b64decode(result["xml"]))
        else:
            target = out_dir / f"{path.stem}.jws.json"
            target.write_text(json.dumps(result["signature"], ensure_ascii=False), encoding="utf-8")
        click.echo(f"signed {path} -> {target} (audit seq {result.get('audit_seq')})")
