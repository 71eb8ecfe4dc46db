"""``kyso audit``: export the log, make and read checkpoints, verify an export offline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kyso.cli.common import EXIT_FAILED, EXIT_USAGE, service_of
from kyso.errors import KysoError

if TYPE_CHECKING:
    from kyso.audit.offline.proof_check import ProofReport


@click.group()
def audit() -> None:
    """The audit log: export, verify offline, checkpoints."""


@audit.command("export")
@click.argument("outfile", type=click.File("wb"), default="-")
@click.pass_context
def audit_export(ctx: click.Context, outfile) -> None:
    """Write the whole log as JSON Lines (entries, then checkpoints). The last checkpoint
    covers the last entry: one is made if needed (it needs the log key and a TSA)."""
    from kyso.audit.checkpoint import checkpointer_for

    kyso = service_of(ctx)
    try:
        checkpointer = checkpointer_for(kyso)
        checkpointer.closing()  # a log key or TSA that cannot sign: refused before any entry
        kyso.record_access("cli", "audit.export")
        size = checkpointer.closing()  # covers the export's own entry
        for line in kyso.audit.export_lines(size=size):
            outfile.write(line)
    finally:
        kyso.close()


@audit.command("checkpoint")
@click.option("--latest", is_flag=True, help="Print the latest stored checkpoint instead of making one.")
@click.pass_context
def audit_checkpoint(ctx: click.Context, latest: bool) -> None:
    """Make a signed, timestamped checkpoint of the log now; print it (JSON, one line).

    Keep the output somewhere the log's operators cannot write: `kyso audit verify
    EXPORT --checkpoint FILE` proves later that the log was not rewritten or cut short.
    """
    from kyso.audit.checkpoint import checkpointer_for
    from kyso.formats import canonical_json

    kyso = service_of(ctx)
    try:
        if latest:
            checkpoint = kyso.audit.latest_checkpoint()
            if checkpoint is None:
                click.echo("kyso: the log has no checkpoint yet", err=True)
                sys.exit(EXIT_USAGE)
        else:
            checkpointer = checkpointer_for(kyso)
            kyso.record_access("cli", "audit.checkpoint")  # covered by the checkpoint it asks for
            checkpoint = checkpointer.checkpoint()
    finally:
        kyso.close()
    click.echo(canonical_json(checkpoint).decode("utf-8"))


@audit.command("verify")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint kept earlier (JSON); may be repeated.")
@click.option("--trust", "trust_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Certificate (PEM/DER) trusted to sign checkpoints or timestamps; may be repeated.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def audit_verify(export: str, checkpoint_files: tuple[str, ...], trust_files: tuple[str, ...], quiet: bool) -> None:
    """Verify an export offline (a file, or - for standard input): entry hashes, the
    chain, checkpoints. Names the first entry or checkpoint that breaks. Exit 0 valid,
    1 broken, 2 unreadable input."""
    from kyso.audit.offline.verify import load_checkpoints, verify_export
    from kyso.keystore.software import load_certificates

    try:
        checkpoints = [cp for f in checkpoint_files for cp in load_checkpoints(Path(f).read_bytes())]
        trust = [c for f in trust_files for c in load_certificates(f)]
    except (OSError, ValueError, KysoError) as exc:
        click.echo(f"kyso: cannot read a checkpoint or certificate: {exc}", err=True)
        sys.exit(EXIT_USAGE)

    def progress(done: int) -> None:
        click.echo(f"\r{done} entries checked", err=True, nl=False)

    try:
        with click.open_file(export, "rb") as f:  # "-": standard input, read once, in one process
            report = verify_export(f, checkpoints=checkpoints, trust=trust, progress=None if quiet else progress)
    except (OSError, KysoError) as exc:
        click.echo(f"kyso: cannot read {export}: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if not quiet:
        click.echo("", err=True)
    for note in report.notes:
        click.echo(f"note: {note}")
    for name in report.signed_by:
        click.echo(f"checkpoints signed by: {name}")
    for name in report.timestamped_by:
        click.echo(f"checkpoints timestamped by: {name}")
    if report.ok:
        on = f" ({report.processes} processes)" if report.processes > 1 else ""
        click.echo(f"OK: {report.entries} entries, {report.checkpoints_checked} checkpoint(s) verified{on}")
        sys.exit(0)
    click.echo(f"FAILED: {report.problem}")
    sys.exit(EXIT_FAILED)


@audit.command("verify-entry")
@click.argument("entry_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--proof", "proof_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The inclusion proof (GET /api/v1/audit/proof/inclusion?seq=&tree_size=).")
@click.option("--checkpoint", "checkpoint_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint kept earlier (JSON), at the proof's tree size.")
@click.option("--trust", "trust_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Certificate (PEM/DER) trusted to sign checkpoints or timestamps; may be repeated.")
@click.option("--file", "record_file", type=click.Path(exists=True, dir_okay=False),
              help="The signed record (or the record as sent): its SHA-256 must be the entry's.")
def audit_verify_entry(
    entry_file: str, proof_file: str, checkpoint_file: str, trust_files: tuple[str, ...], record_file: str | None
) -> None:
    """Prove offline that one entry (a JSON object, or the answer of GET
    /api/v1/audit/entries holding just it) is in the log a kept checkpoint describes,
    without the whole export. Exit 0 proven, 1 not, 2 unreadable input."""
    from kyso.audit.offline.proof_check import check_inclusion
    from kyso.formats import parse_json_strict
    from kyso.keystore.software import load_certificates

    try:
        entry = parse_json_strict(Path(entry_file).read_bytes())
        if isinstance(entry, dict) and isinstance(entry.get("entries"), list) and len(entry["entries"]) == 1:
            entry = entry["entries"][0]
        proof = parse_json_strict(Path(proof_file).read_bytes())
        checkpoint = _one_checkpoint(checkpoint_file)
        trust = [c for f in trust_files for c in load_certificates(f)]
        data = Path(record_file).read_bytes() if record_file else None
    except (OSError, ValueError, KysoError) as exc:
        click.echo(f"kyso: cannot read the input: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    report = check_inclusion(entry, proof, checkpoint, trust, data)
    _say_who_signed(report, trust)
    cp = checkpoint
    click.echo(
        f"OK: entry seq {entry['seq']} ({entry['action']}, record {entry['record_id']!r}, {entry['time']}) "
        f"is in the log {cp['origin']!r} of tree size {cp['tree_size']} (checkpoint of {cp['time']})"
    )
    if report.file_is:
        returned = "returned" if report.file_is == "signature" else "received"
        click.echo(f"OK: {record_file} is the record this operation {returned} (SHA-256 {report.file_is}_sha256)")


@audit.command("verify-consistency")
@click.argument("earlier_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("later_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--proof", "proof_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The consistency proof (GET /api/v1/audit/proof/consistency?first=&second=).")
@click.option("--trust", "trust_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Certificate (PEM/DER) trusted to sign checkpoints or timestamps; may be repeated.")
def audit_verify_consistency(earlier_file: str, later_file: str, proof_file: str, trust_files: tuple[str, ...]) -> None:
    """Prove offline that the log of a later kept checkpoint extends the log of an earlier
    one: nothing of the earlier entries was changed or removed since. Exit 0 proven, 1
    not, 2 unreadable input."""
    from kyso.audit.offline.proof_check import check_consistency
    from kyso.formats import parse_json_strict
    from kyso.keystore.software import load_certificates

    try:
        earlier, later = (_one_checkpoint(path) for path in (earlier_file, later_file))
        proof = parse_json_strict(Path(proof_file).read_bytes())
        trust = [c for f in trust_files for c in load_certificates(f)]
    except (OSError, ValueError, KysoError) as exc:
        click.echo(f"kyso: cannot read the input: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    report = check_consistency(earlier, later, proof, trust)
    _say_who_signed(report, trust)
    click.echo(
        f"OK: the log {later['origin']!r} at tree size {later['tree_size']} ({later['time']}) extends "
        f"its tree size {earlier['tree_size']} ({earlier['time']})"
    )


def _one_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint a file holds; ValueError unless it holds exactly one."""
    from kyso.audit.offline.verify import load_checkpoints

    checkpoints = load_checkpoints(Path(path).read_bytes())
    if len(checkpoints) != 1:
        raise ValueError(f"{path} holds {len(checkpoints)} checkpoints; give one per file")
    return checkpoints[0]


def _say_who_signed(report: ProofReport, trust: list[Any]) -> None:
    """Print who signed and timestamped the checkpoints; on problems, print them and exit 1."""
    for name in report.signed_by:
        click.echo(f"checkpoint signed by: {name}")
    for name in report.timestamped_by:
        click.echo(f"checkpoint timestamped by: {name}")
    if not trust and report.ok:
        click.echo("note: no --trust certificate was given: the checkpoint's signature proves it intact, not whose it is")
    if not report.ok:
        for problem in report.problems:
            click.echo(f"FAILED: {problem}")
        sys.exit(EXIT_FAILED)
