"""``kyso sign xml``: sign an XML record locally (for scripts); audited like the API's."""

from __future__ import annotations

from pathlib import Path

import click

from kyso.cli.common import service_of


@click.command("xml")
@click.argument("infile", type=click.File("rb"))
@click.argument("outfile", type=click.Path(dir_okay=False, writable=True))
@click.option("--key", "alias", required=True)
@click.option("--level", default="B-T", type=click.Choice(["B-B", "B-T"]))
@click.option("--record-id")
@click.option("--profile", type=click.Choice(["bhyt", "xades"]),
              help="bhyt: the facility signature inside CHUKYDONVI (the default when the record has "
                   "one); xades: XAdES baseline as the root's last child.")
@click.pass_context
def sign_xml_cmd(ctx: click.Context, infile, outfile: str, alias: str, level: str, record_id: str | None,
                 profile: str | None) -> None:
    """Sign the XML record INFILE into OUTFILE."""
    from kyso.service import Actor
    from kyso.signer.xml import XmlSignOptions

    kyso = service_of(ctx)
    try:
        options = XmlSignOptions(level=level, profile=profile)
        signed, appended = kyso.sign_xml(Actor("cli"), alias, infile.read(), options, record_id)
    finally:
        kyso.close()
    Path(outfile).write_bytes(signed.xml)
    click.echo(f"signed {outfile} (profile {signed.profile}, audit seq {appended.seq}, sha256 {signed.sha256})")
