"""The ``kyso`` command line.

Exit codes: 0 success, 1 verification failed, 2 usage or input error. Secrets are
never arguments: PINs and passphrases come from the environment, files, or a prompt.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from kyso.cli.common import EXIT_FAILED, EXIT_USAGE, config_of, service_of
from kyso.errors import KysoError


class KysoGroup(click.Group):
    """Turn domain errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KysoError as exc:
            click.echo(f"kyso: {exc.code}: {exc.detail}", err=True)
            sys.exit(EXIT_USAGE)


@click.group(cls=KysoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="KYSO_CONFIG",
              help="TOML configuration file (default: the embedded dev configuration).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """kyso: sign, timestamp and audit medical records."""
    ctx.obj = {"config_path": config_path}


# -- serve -------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="Worker processes (default: one per CPU core this process may use).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int | None, threads: int) -> None:
    """Serve the HTTP API (gunicorn; each worker opens its own keys and tokens)."""
    import os

    from kyso.api.logs import configure

    workers = workers or max(1, min(64, len(os.sched_getaffinity(0))))
    from kyso.cli.devsetup import ensure_dev_clients
    from kyso.cli.gunicorn import run

    configure()  # every line from here on is a JSON object (README: Observability)
    log = logging.getLogger("kyso.serve")
    config = config_of(ctx)
    kyso = service_of(ctx)  # schema and first-start state, once, before any worker forks
    try:
        keys_file = ensure_dev_clients(kyso)
        existing = config.data_dir / "dev-api-keys.txt"
    finally:
        kyso.close()
    log.info(f"kyso: database {config.db_url}")
    if keys_file is not None:
        log.info(f"kyso: first start: created dev clients dev-his and dev-auditor; API keys in {keys_file}")
    elif config.dev_pki and existing.exists():
        log.info(f"kyso: dev API keys are in {existing}")
    log.info(f"kyso: listening on http://{host}:{port} ({workers} worker(s))")
    if config.dev_pki:
        _warn_of_dev_pki_urls(config.pki_dir, host, port)
    sys.exit(run(config, ctx.obj["config_path"], host, port, workers, threads))


def _warn_of_dev_pki_urls(pki_dir: Path, host: str, port: int) -> None:
    """Say so when the dev PKI's CRL and OCSP URLs do not lead to this server: kyso checks
    revocation in process, but pdfsig, Adobe Reader and other validators would fail."""
    from kyso.certs.devpki import published_base_url

    published = published_base_url(pki_dir)
    reachable = {f"http://{h}:{port}" for h in (host, "127.0.0.1", "localhost")} if host in (
        "127.0.0.1", "0.0.0.0", "localhost") else {f"http://{host}:{port}"}  # fmt: skip
    if published is None or published in reachable:
        return
    logging.getLogger("kyso.serve").info(
        f"kyso: note: the dev PKI's certificates send validators to {published}/pki for CRLs and "
        f"OCSP, which is not this server; kyso checks revocation itself, but pdfsig and other "
        f"validators will report an unknown revocation status. To match, run "
        f"`kyso pki init-dev --out DIR --base-url http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}` "
        f"and set dev_pki_path = \"DIR\" in the configuration."
    )


# -- clients -----------------------------------------------------------------


@main.group()
def clients() -> None:
    """Manage API clients (HIS systems, auditors, administrators)."""


@clients.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["his", "auditor", "admin"]))
@click.option("--keys", default="", help="Comma-separated key aliases the client may sign with.")
@click.pass_context
def clients_add(ctx: click.Context, name: str, role: str, keys: str) -> None:
    """Create a client; its API key is printed once, alone on the last line."""
    kyso = service_of(ctx)
    try:
        aliases = tuple(k.strip() for k in keys.split(",") if k.strip())
        api_key = kyso.add_client("cli", name, role, aliases)
    finally:
        kyso.close()
    click.echo(f"created client {name} (role {role}, keys: {', '.join(aliases) or 'none'}); its API key:")
    click.echo(api_key)


@clients.command("list")
@click.pass_context
def clients_list(ctx: click.Context) -> None:
    """List clients with their roles and granted keys."""
    kyso = service_of(ctx)
    try:
        for c in kyso.clients.list():
            state = "revoked" if c.revoked else "active"
            click.echo(f"{c.name}\t{c.role}\t{state}\t{','.join(c.keys) or '-'}")
    finally:
        kyso.close()


@clients.command("revoke")
@click.argument("name")
@click.pass_context
def clients_revoke(ctx: click.Context, name: str) -> None:
    """Revoke a client's API key."""
    kyso = service_of(ctx)
    try:
        kyso.revoke_client("cli", name)
    finally:
        kyso.close()
    click.echo(f"revoked client {name}")


# -- keys --------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Key aliases."""


@keys.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """Every alias with its kind, algorithm, subject, expiry and health."""
    from kyso.keystore import load_keystore

    keystore = load_keystore(config_of(ctx))
    try:
        for alias in keystore.aliases():
            key = keystore.get(alias)
            try:
                key.check()
                info = key.info
            except KysoError as exc:
                click.echo(f"{alias}\t-\t-\t-\tfailing ({exc.code})\t-")
                continue
            click.echo(f"{alias}\t{info.kind}\t{info.algorithm}\t{info.not_after:%Y-%m-%d}\tok\t{info.subject}")
    finally:
        keystore.close()


# -- sign / verify -------------------------------------------------------------


@main.group()
def sign() -> None:
    """Sign locally (for scripts); every signature is audited."""


@sign.command("pdf")
@click.argument("infile", type=click.File("rb"))
@click.argument("outfile", type=click.Path(dir_okay=False, writable=True))
@click.option("--key", "alias", required=True)
@click.option("--level", default="B-T", type=click.Choice(["B-B", "B-T", "B-LT", "B-LTA"]))
@click.option("--record-id")
@click.option("--reason")
@click.option("--location")
@click.option("--certify", is_flag=True)
@click.option("--repair", is_flag=True, help="Rebuild a damaged PDF and sign the rebuilt file.")
@click.pass_context
def sign_pdf_cmd(ctx, infile, outfile, alias, level, record_id, reason, location, certify, repair) -> None:
    """Sign INFILE (PDF) into OUTFILE."""
    from kyso.service import Actor
    from kyso.signer.pades import PdfSignOptions

    kyso = service_of(ctx)
    try:
        options = PdfSignOptions(level=level, reason=reason, location=location, certify=certify, repair=repair)
        signed, appended = kyso.sign_pdf(Actor("cli"), alias, infile.read(), options, record_id)
    finally:
        kyso.close()
    Path(outfile).write_bytes(signed.pdf)
    click.echo(f"signed {outfile} (field {signed.field}, audit seq {appended.seq}, sha256 {signed.sha256})")


@sign.command("json")
@click.argument("infile", type=click.File("rb"))
@click.option("--key", "alias", required=True)
@click.option("--level", default="B-T", type=click.Choice(["B-B", "B-T"]))
@click.option("--record-id")
@click.option("--detached", is_flag=True)
@click.pass_context
def sign_json_cmd(ctx, infile, alias, level, record_id, detached) -> None:
    """Sign the JSON record INFILE; print the JWS (flattened JSON serialization)."""
    from kyso.formats import parse_json_strict
    from kyso.service import Actor

    payload = parse_json_strict(infile.read())
    kyso = service_of(ctx)
    try:
        signed, _ = kyso.sign_json(Actor("cli"), alias, payload, level, detached, record_id)
    finally:
        kyso.close()
    click.echo(json.dumps(signed.jws, ensure_ascii=False))


@main.command()
@click.argument("file", type=click.File("rb"))
@click.option("--payload", type=click.File("rb"), help="The payload of a detached JWS.")
@click.option("--lang", type=click.Choice(["vi", "en"]),
              help="Explain the report in plain words, in Vietnamese (vi) or English (en).")
@click.option("--json", "as_json", is_flag=True, help="With --lang: the report as JSON, explanations included.")
@click.pass_context
def verify(ctx: click.Context, file, payload, lang: str | None, as_json: bool) -> None:
    """Validate a signed PDF, JWS or XML record; print the report (JSON, or in words with
    --lang); exit 1 unless TOTAL_PASSED."""
    from kyso.formats import parse_json_strict
    from kyso.service import Actor

    data = file.read()
    kyso = service_of(ctx)
    try:
        if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
            report = kyso.verify_xml(Actor("cli"), data)
        elif data.lstrip()[:1] == b"{":
            jws = parse_json_strict(data)
            body = parse_json_strict(payload.read()) if payload else None
            report = kyso.verify_json(Actor("cli"), jws, body, payload is not None)
        else:
            report = kyso.verify_pdf(Actor("cli"), data)
    finally:
        kyso.close()
    if lang is None:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        from kyso.signer.verify.explain import explain_report, render_text

        explained = explain_report(report, lang)
        click.echo(json.dumps(explained, ensure_ascii=False, indent=2) if as_json else render_text(explained), nl=as_json)
    sys.exit(0 if report["indication"] == "TOTAL_PASSED" else EXIT_FAILED)


# -- records -------------------------------------------------------------------


@main.group()
def records() -> None:
    """The record registry: what was signed for each record, and when to extend it."""


@records.command("due")
@click.option("--before", "before", required=True, help="A date (YYYY-MM-DD) or an ISO 8601 time.")
@click.pass_context
def records_due(ctx: click.Context, before: str) -> None:
    """Records whose newest signed PDF must be extended (POST /api/v1/extend/pdf?level=B-LTA)
    before BEFORE, soonest first: record id, extend before, level, audit seq."""
    from kyso.signer.archive_dates import parse_deadline

    moment = parse_deadline(before)  # InvalidRequest: exit 2, said by KysoGroup
    kyso = service_of(ctx)
    try:
        kyso.record_access("cli", "records.due")
        due = kyso.audit.records_due(moment, limit=1_000_000)
    finally:
        kyso.close()
    for row in due:
        click.echo(f"{row.record_id}\t{row.extend_before}\t{row.level}\t{row.audit_seq}")


# -- pki / db ------------------------------------------------------------------


@main.group()
def pki() -> None:
    """The development PKI."""


@pki.command("init-dev")
@click.option("--out", type=click.Path(file_okay=False), help="Directory (default: the shipped certs/dev).")
@click.option("--base-url", default="http://127.0.0.1:8080", show_default=True,
              help="Where the CRLs and the OCSP responder are served.")
def pki_init_dev(out: str | None, base_url: str) -> None:
    """(Re)generate the dev PKI: root, intermediate, seals, clinicians, TSA, OCSP. DEV ONLY."""
    from kyso.certs.devpki import dev_pki_dir, generate_dev_pki

    target = Path(out) if out else dev_pki_dir()
    generate_dev_pki(target, base_url=base_url)
    click.echo(f"dev PKI written to {target} (DEV ONLY keys, passphrase in kyso.certs.devpki.DEV_PASSPHRASE)")


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or upgrade the schema (Alembic migrations; safe to run from several hosts at once)."""
    from sqlalchemy.engine import make_url

    from kyso.db import create_schema, open_database, schema_revision

    config = config_of(ctx)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(config.db_url)
    try:
        before = schema_revision(database)
        create_schema(database)
        after = schema_revision(database)
    finally:
        database.dispose()
    where = make_url(config.db_url).render_as_string(hide_password=True)
    click.echo(f"schema at revision {after} (was {before or 'empty'}): {where}")


@db.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def db_backup(ctx: click.Context, target: Path) -> None:
    """Copy the embedded SQLite database to TARGET while the service runs (a consistent
    snapshot, checked before it is put in place). PostgreSQL: use pg_dump."""
    from kyso.db.backup import backup_sqlite

    try:
        done = backup_sqlite(config_of(ctx).db_url, target)
    except (KysoError, OSError) as exc:
        click.echo(f"kyso: no backup made: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"backup {done.path}: {done.bytes} bytes, {done.entries} audit entries, chain head {done.head_hash}")


from kyso.cli.audit import audit  # noqa: E402
from kyso.cli.check import config_group  # noqa: E402
from kyso.cli.session import session  # noqa: E402
from kyso.cli.token import token  # noqa: E402
from kyso.cli.xml import sign_xml_cmd  # noqa: E402

sign.add_command(sign_xml_cmd)
main.add_command(audit)
main.add_command(token)
main.add_command(config_group)
main.add_command(session)


if __name__ == "__main__":  # pragma: no cover
    main()
