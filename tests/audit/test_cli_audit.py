"""`kyso audit checkpoint|export|verify` and `kyso db upgrade`, as an auditor runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kyso.audit.entry import entry_hash_hex
from kyso.cli import main
from kyso.db import head_revision
from kyso.formats import canonical_json


def runner(data_dir: Path, **env: str):
    """Run the command line in-process on ``data_dir`` (exit code, output)."""
    environment = {
        "KYSO_DATA_DIR": str(data_dir),
        "KYSO_CONFIG": None,
        "KYSO_DATABASE_URL": None,
        **env,
    }

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)
        return result.exit_code, result.output

    return invoke


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-audit")


@pytest.fixture(scope="module")
def run(workdir: Path):
    return runner(workdir / "var")


@pytest.fixture(scope="module")
def kept(run, workdir: Path) -> dict[str, Path]:
    """A log of a few entries, a checkpoint the auditor kept, more entries, an export."""
    for name in ("a", "b", "c", "d"):
        assert run("clients", "add", f"his-{name}", "--role", "his")[0] == 0
    code, out = run("audit", "checkpoint")
    assert code == 0, out
    checkpoint = workdir / "checkpoint-1.json"
    checkpoint.write_text(out)
    for name in ("e", "f", "g"):
        assert run("clients", "add", f"his-{name}", "--role", "his")[0] == 0
    export = workdir / "audit.jsonl"
    assert run("audit", "export", str(export))[0] == 0
    return {"checkpoint": checkpoint, "export": export}


def entries_of(export: Path) -> list[dict]:
    return [json.loads(line) for line in export.read_bytes().splitlines() if b'"seq"' in line]


def write(path: Path, entries: list[dict]) -> Path:
    path.write_bytes(b"".join(canonical_json(e) + b"\n" for e in entries))
    return path


def test_a_checkpoint_is_printed_as_one_json_line_and_covers_its_own_entry(kept):
    checkpoint = json.loads(kept["checkpoint"].read_text())
    assert checkpoint["tree_size"] == 5  # four client.add entries and the audit.checkpoint entry
    assert entries_of(kept["export"])[4]["action"] == "audit.checkpoint"


def test_the_export_verifies_with_the_kept_checkpoint_and_the_dev_root(run, kept, root_pem):
    code, out = run(
        "audit",
        "verify",
        str(kept["export"]),
        "--checkpoint",
        str(kept["checkpoint"]),
        "--trust",
        str(root_pem),
        "--quiet",
    )
    assert code == 0, out
    # Nine entries with the export's own; the kept checkpoint is also in the export, with
    # the one the export made before its entry (that the TSA signs: else nothing is
    # written) and the one of its last entry it ends with: no entry comes after them all.
    assert "OK: 9 entries, 4 checkpoint(s) verified" in out
    assert "checkpoints signed by: " in out and "come after" not in out


def test_without_trust_the_verifier_says_whose_signature_it_could_not_check(run, kept):
    code, out = run(
        "audit", "verify", str(kept["export"]), "--checkpoint", str(kept["checkpoint"]), "--quiet"
    )
    assert code == 0 and "no --trust certificate was given" in out


def test_a_checkpoint_not_signed_by_a_trusted_key_fails(run, kept, pki):
    code, out = run(
        "audit",
        "verify",
        str(kept["export"]),
        "--checkpoint",
        str(kept["checkpoint"]),
        "--trust",
        str(pki / "lab-seal.cert.pem"),
        "--quiet",
    )
    assert code == 1 and "does not chain to a --trust certificate" in out


@pytest.mark.parametrize("how", ["changed", "removed", "inserted", "reordered"])
def test_a_tampered_export_names_the_entry(run, kept, tmp_path, how):
    entries = entries_of(kept["export"])
    if how == "changed":
        entries[2]["actor"] = "intruder"
    elif how == "removed":
        del entries[2]
    elif how == "inserted":
        entries.insert(2, dict(entries[1]))
    else:
        entries[2], entries[3] = entries[3], entries[2]
    code, out = run("audit", "verify", str(write(tmp_path / f"{how}.jsonl", entries)), "--quiet")
    assert code == 1 and out.startswith("FAILED: ")
    assert "seq 2" in out, out


def test_a_reserialized_export_verifies_with_a_note_and_a_changed_one_fails(
    run, kept, tmp_path, root_pem
):
    lines = kept["export"].read_bytes().splitlines()
    values = [json.loads(line) for line in lines]
    again = tmp_path / "reserialized.jsonl"
    again.write_text("".join(json.dumps(v, indent=1).replace("\n", "") + "\n" for v in values))
    args = ("--checkpoint", str(kept["checkpoint"]), "--trust", str(root_pem), "--quiet")
    code, out = run("audit", "verify", str(again), *args)
    assert code == 0, out
    assert "note: 9 entry lines (the first: seq 0) are not the canonical RFC 8785 bytes" in out
    assert "OK: 9 entries, 4 checkpoint(s) verified" in out
    values[2]["actor"] = "intruder"
    again.write_text("".join(json.dumps(v) + "\n" for v in values))
    code, out = run("audit", "verify", str(again), *args)
    assert code == 1 and "\nFAILED: entry seq 2: " in out, out


def test_the_export_ends_with_a_checkpoint_of_its_last_entry(kept):
    lines = [json.loads(line) for line in kept["export"].read_bytes().splitlines()]
    entries = [v for v in lines if "seq" in v]
    assert entries[-1]["action"] == "audit.export" and lines[-1]["tree_size"] == len(entries)


@pytest.mark.parametrize("member", ["actor", "detail"])
def test_an_edit_of_the_newest_entries_fails_against_the_export_s_own_checkpoint(
    run, kept, tmp_path, member
):
    """The newest entries have no later entry whose prev_hash would give an edit away: the
    checkpoint the export ends with does."""
    lines = [json.loads(line) for line in kept["export"].read_bytes().splitlines()]
    last = max(i for i, v in enumerate(lines) if "seq" in v)
    lines[last][member] = "intruder" if member == "actor" else {"edited": True}
    edited = tmp_path / f"edited-{member}.jsonl"
    edited.write_bytes(b"".join(canonical_json(v) + b"\n" for v in lines))
    code, out = run("audit", "verify", str(edited), "--quiet")
    assert code == 1 and "FAILED: " in out, out


def test_a_rewritten_and_rehashed_log_fails_against_the_kept_checkpoint(run, kept, tmp_path):
    entries = entries_of(kept["export"])
    entries[1]["detail"]["client"] = "someone-else"
    for seq in range(2, len(entries)):
        entries[seq]["prev_hash"] = entry_hash_hex(entries[seq - 1])
    rewritten = write(tmp_path / "rewritten.jsonl", entries)
    assert run("audit", "verify", str(rewritten), "--quiet")[0] == 0  # consistent in itself
    code, out = run(
        "audit", "verify", str(rewritten), "--checkpoint", str(kept["checkpoint"]), "--quiet"
    )
    assert code == 1 and "at tree_size 5" in out and "rewritten and re-hashed" in out


def test_a_cut_off_tail_fails_against_the_kept_checkpoint(run, kept, tmp_path):
    cut = write(tmp_path / "cut.jsonl", entries_of(kept["export"])[:3])
    code, out = run("audit", "verify", str(cut), "--checkpoint", str(kept["checkpoint"]), "--quiet")
    assert code == 1 and "entries seq 3 to 4 were cut off" in out


def test_unreadable_input_exits_2(run, kept, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    assert run("audit", "verify", str(kept["export"]), "--checkpoint", str(bad))[0] == 2
    assert run("audit", "verify", str(tmp_path / "missing.jsonl"))[0] == 2


def test_latest_prints_the_stored_checkpoint(run, kept):
    code, out = run("audit", "checkpoint", "--latest")
    # The latest is the one the export ended with.
    assert code == 0 and json.loads(out) == json.loads(kept["export"].read_bytes().splitlines()[-1])


def test_db_upgrade_runs_the_migrations_on_postgresql_and_hides_the_password(tmp_path, pg_url):
    run = runner(tmp_path, KYSO_DATABASE_URL=pg_url)
    code, out = run("db", "upgrade")
    head = head_revision()
    assert code == 0 and f"schema at revision {head} (was empty)" in out
    password = pg_url.split(":")[2].split("@")[0]
    assert password not in out
    assert f"(was {head})" in run("db", "upgrade")[1]
