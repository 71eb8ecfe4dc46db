"""``kyso config check``: is this configuration one the service can start and sign with?

Each part is checked on its own and reported on a line of its own, so that one run shows
everything that is wrong: the database and its schema, the trust anchors, every key alias
(its key, its PIN or passphrase source, its certificate against the signer policy), and
every timestamp authority (a real request for a timestamp). Nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from kyso.cli.common import EXIT_USAGE
from kyso.config import Config, load_config
from kyso.errors import KysoError


@dataclass(frozen=True)
class Finding:
    part: str
    ok: bool
    text: str


def _run(part: str, check: Callable[[], str]) -> Finding:
    try:
        return Finding(part, True, check())
    except KysoError as exc:
        return Finding(part, False, f"{exc.code}: {exc.detail}")
    except Exception as exc:  # any failure of a part is that part's finding
        return Finding(part, False, f"{exc.__class__.__name__}: {exc}")


def _database(config: Config) -> str:
    from sqlalchemy import text

    from kyso.db import head_revision, open_database, schema_revision

    if config.db_url.startswith("sqlite:///") and not Path(config.db_url[len("sqlite:///"):]).exists():
        return f"no database yet at {config.db_url}; the first start creates it"
    db = open_database(config.db_url)
    try:
        with db.reader.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision, head = schema_revision(db), head_revision()
        if revision is None:
            return f"reachable; no schema yet (the first start creates revision {head})"
        if revision != head:
            raise RuntimeError(f"schema at revision {revision}, this kyso needs {head}: run `kyso db upgrade`")
        return f"reachable, schema at revision {head}"
    finally:
        db.dispose()


def _trust(config: Config) -> str:
    from kyso.trust.store import TrustStore

    store = TrustStore.from_patterns(config.trust.roots, profile=config.trust.profile)
    if not store:
        raise RuntimeError("no trust anchors: set [trust] roots (verification trusts nothing)")
    return f"{len(store.root_ders)} trust anchor(s): " + ", ".join(
        c.subject.human_friendly for c in store.roots()
    )


# Dev PKI aliases that exist to be refused (the tests of expired and future certificates).
_DEV_UNUSABLE = ("dr-expired", "dr-future")


def _keys(config: Config) -> Iterator[Finding]:
    from kyso.keystore import load_one
    from kyso.trust.policy import check_signer

    for kc in config.keys:

        def one(kc=kc) -> str:
            key = load_one(kc, os.environ)
            try:
                key.check()
                info = key.info
                who = f"the certificate of key alias {kc.alias!r}"
                role = "documents"
                if kc.alias == config.tsa.key:
                    role = "the built-in TSA"
                elif kc.alias == config.audit.log_key:
                    role = "audit checkpoints"
                elif config.dev_pki and kc.alias in _DEV_UNUSABLE:
                    return f"{kc.kind}, DEV ONLY, deliberately unusable (refusal tests)"
                if role == "documents":
                    check_signer(info.certificate, who=who)
                subject = info.certificate.subject.human_friendly
                return f"{kc.kind}, signs {role}, {subject}, valid until {info.not_after:%Y-%m-%d}"
            finally:
                key.close()

        yield _run(f"key {kc.alias}", one)


def _timestamp_authorities(config: Config) -> Iterator[Finding]:
    from kyso.signer.timestamp.client import TimestampClient, http_source, token_time

    for url in config.tsa.urls:

        def ask(url=url) -> str:
            client = TimestampClient([http_source(url, config.tsa.timeout_seconds)])
            token = client.timestamp(hashlib.sha256(secrets.token_bytes(16)).digest())
            return f"answered with a valid token, time {token_time(token):%Y-%m-%dT%H:%M:%SZ}"

        yield _run(f"tsa {url}", ask)
    if not config.tsa.urls:
        if config.tsa.builtin and config.key(config.tsa.key) is not None:
            yield Finding("tsa", True, f"the built-in TSA, key alias {config.tsa.key!r}")
        else:
            yield Finding("tsa", False, "no [tsa] urls and no built-in TSA key: B-T signatures will fail")


def check_configuration(config: Config) -> list[Finding]:
    findings = [
        _run("database", lambda: _database(config)),
        _run("trust", lambda: _trust(config)),
    ]
    findings.extend(_keys(config))
    findings.extend(_timestamp_authorities(config))
    return findings


@click.group("config")
def config_group() -> None:
    """The configuration."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Check every part of the configuration; exit 2 if anything is wrong."""
    path = ctx.find_root().obj["config_path"]
    try:
        config = load_config(path)
    except KysoError as exc:
        click.echo(f"FAIL  configuration {path or '(embedded default)'}: {exc.detail}")
        sys.exit(EXIT_USAGE)
    click.echo(f"ok    configuration {path or '(embedded default)'}")
    findings = check_configuration(config)
    for finding in findings:
        click.echo(f"{'ok  ' if finding.ok else 'FAIL'}  {finding.part}: {finding.text}")
    failed = [f for f in findings if not f.ok]
    if failed:
        click.echo(f"{len(failed)} problem(s); kyso would not start or sign as configured", err=True)
        sys.exit(EXIT_USAGE)
