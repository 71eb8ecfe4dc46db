"""Offline proofs against kept checkpoints, without the export: `kyso audit verify-entry`
(one signature is in the log), `kyso audit verify-consistency` (a later log extends an
earlier one); and `kyso audit verify -` reading an export from a pipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chains import build_chain
from click.testing import CliRunner
from support import corpus_pdfs, make_config

from kyso.audit.checkpoint import make_checkpoint
from kyso.audit.entry import entry_hash, entry_hash_hex
from kyso.audit.merkle import consistency_proof, root_from_leaves
from kyso.audit.store import TreeState
from kyso.cli import main
from kyso.service import Kyso


def cli(data_dir: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str]:
    env = {"KYSO_DATA_DIR": str(data_dir), "KYSO_CONFIG": None, "KYSO_DATABASE_URL": None}
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def proven(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A PDF signed and logged, more entries after it, a kept checkpoint, the entry and
    its inclusion proof at the checkpoint's size: what an auditor gathers."""
    work = tmp_path_factory.mktemp("verify-entry")
    data = work / "var"
    signed = work / "signed.pdf"
    code, out = cli(
        data,
        "sign",
        "pdf",
        str(corpus_pdfs()[5]),
        str(signed),
        "--key",
        "hospital-seal",
        "--record-id",
        "encounter/7/discharge",
        "--level",
        "B-B",
    )
    assert code == 0, out
    for name in ("a", "b", "c"):
        assert cli(data, "clients", "add", f"his-{name}", "--role", "his")[0] == 0
    code, out = cli(data, "audit", "checkpoint")
    assert code == 0, out
    (work / "checkpoint.json").write_text(out)
    checkpoint = json.loads(out)
    kyso = Kyso.open(make_config(data))
    try:
        (row,) = kyso.audit.record_signatures("encounter/7/discharge")
        seq = row.audit_seq
        logged = kyso.audit.entries(after=seq - 1, limit=1)
        entries = {"entries": [e.to_json() for e in logged], "next": seq + 1}
        proof = kyso.audit.inclusion(seq, checkpoint["tree_size"]).to_json()
    finally:
        kyso.close()
    (work / "entry.json").write_text(json.dumps(entries, ensure_ascii=False))
    (work / "proof.json").write_text(json.dumps(proof))
    return {
        "work": work,
        "signed": signed,
        "entry": work / "entry.json",
        "proof": work / "proof.json",
        "checkpoint": work / "checkpoint.json",
    }


def verify_entry(paths: dict[str, Path], *more: str) -> tuple[int, str]:
    return cli(
        paths["work"],
        "audit",
        "verify-entry",
        str(paths["entry"]),
        "--proof",
        str(paths["proof"]),
        "--checkpoint",
        str(paths["checkpoint"]),
        *more,
    )


def test_a_signed_record_is_proven_in_the_log_with_the_checkpoint_and_the_dev_root(
    proven, root_pem
):
    code, out = verify_entry(proven, "--trust", str(root_pem), "--file", str(proven["signed"]))
    assert code == 0, out
    assert "OK: entry seq" in out and "'encounter/7/discharge'" in out and "sign.pdf" in out
    assert "is the record this operation returned" in out
    assert "checkpoint signed by: " in out and "no --trust" not in out


def test_without_trust_the_proof_holds_but_says_whose_signature_it_could_not_check(proven):
    code, out = verify_entry(proven)
    assert code == 0 and "no --trust certificate was given" in out


def test_an_entry_is_proven_by_its_content_however_it_is_formatted(proven, tmp_path, root_pem):
    entry = json.loads(proven["entry"].read_text())["entries"][0]
    reordered = dict(reversed(list(entry.items())))
    for text in (json.dumps(reordered, indent=2), json.dumps(entry, sort_keys=True)):
        proven_again = dict(proven, entry=tmp_path / "entry-again.json")
        proven_again["entry"].write_text(text)
        code, out = verify_entry(proven_again, "--trust", str(root_pem))
        assert code == 0 and "OK: entry seq" in out, out


def test_a_changed_entry_is_not_proven(proven, tmp_path):
    entry = json.loads(proven["entry"].read_text())["entries"][0]
    entry["record_id"] = "encounter/8/discharge"
    changed = dict(proven, entry=tmp_path / "entry.json")
    changed["entry"].write_text(json.dumps(entry))
    code, out = verify_entry(changed)
    assert code == 1 and "does not lead from entry seq" in out


def test_another_file_is_not_the_record_of_the_entry(proven, root_pem):
    code, out = verify_entry(proven, "--file", str(corpus_pdfs()[4]))
    assert code == 1 and "is neither what this entry's operation returned" in out


def test_a_proof_for_another_tree_size_says_which_to_ask_for(proven, tmp_path):
    proof = json.loads(proven["proof"].read_text())
    checkpoint = json.loads(proven["checkpoint"].read_text())
    proof["tree_size"] = checkpoint["tree_size"] - 1
    other = dict(proven, proof=tmp_path / "proof.json")
    other["proof"].write_text(json.dumps(proof))
    code, out = verify_entry(other)
    assert code == 1 and f"tree_size={checkpoint['tree_size']}" in out


def test_a_checkpoint_signed_by_a_key_outside_the_trust_is_refused(proven, pki):
    code, out = verify_entry(proven, "--trust", str(pki / "lab-seal.cert.pem"))  # pins another key
    assert code == 1 and "the checkpoint is not the log's own" in out
    assert "does not chain to a --trust certificate" in out


def test_unreadable_input_is_a_usage_error(proven, tmp_path):
    (tmp_path / "junk.json").write_text("{not json")
    code, out = verify_entry(dict(proven, proof=tmp_path / "junk.json"))
    assert code == 2 and "cannot read the input" in out


def test_audit_verify_reads_an_export_from_standard_input(proven):
    code, export = cli(proven["work"] / "var", "audit", "export")
    assert code == 0
    code, out = cli(
        proven["work"] / "var", "audit", "verify", "-", "--quiet", stdin=export.encode()
    )
    assert code == 0 and "OK: " in out, out
    broken = export.replace('"outcome":"ok"', '"outcome":"denied"', 1).encode()
    code, out = cli(proven["work"] / "var", "audit", "verify", "-", "--quiet", stdin=broken)
    assert code == 1 and "FAILED: entry seq" in out


@pytest.fixture(scope="module")
def grown(proven) -> dict[str, Path]:
    """A second checkpoint after more entries, and the consistency proof between the two."""
    work, data = proven["work"], proven["work"] / "var"
    for name in ("d", "e"):
        assert cli(data, "clients", "add", f"his-{name}", "--role", "his")[0] == 0
    code, out = cli(data, "audit", "checkpoint")
    assert code == 0, out
    (work / "checkpoint-2.json").write_text(out)
    first = json.loads(proven["checkpoint"].read_text())["tree_size"]
    kyso = Kyso.open(make_config(data))
    try:
        proof = kyso.audit.consistency(first, json.loads(out)["tree_size"]).to_json()
    finally:
        kyso.close()
    (work / "consistency.json").write_text(json.dumps(proof))
    return {
        "work": work,
        "earlier": proven["checkpoint"],
        "later": work / "checkpoint-2.json",
        "proof": work / "consistency.json",
    }


def verify_consistency(paths: dict[str, Path], *more: str) -> tuple[int, str]:
    return cli(
        paths["work"],
        "audit",
        "verify-consistency",
        str(paths["earlier"]),
        str(paths["later"]),
        "--proof",
        str(paths["proof"]),
        *more,
    )


def test_a_later_checkpoint_extends_an_earlier_one(grown, root_pem):
    code, out = verify_consistency(grown, "--trust", str(root_pem))
    assert code == 0, out
    earlier, later = (json.loads(grown[k].read_text())["tree_size"] for k in ("earlier", "later"))
    assert f"at tree size {later}" in out and f"extends its tree size {earlier}" in out


def test_a_rewritten_log_is_caught_even_with_a_checkpoint_signed_by_the_log_key(
    grown, tmp_path, log_signer, root_pem
):
    # Whoever holds the log key (the dev one here) can sign a checkpoint of another history;
    # no proof leads from the root the auditor kept to it.
    earlier = json.loads(grown["earlier"].read_text())
    other = build_chain(earlier["tree_size"] + 3)
    leaves = [entry_hash(e) for e in other]
    state = TreeState(len(other), root_from_leaves(leaves), entry_hash_hex(other[-1]))
    forged = make_checkpoint(state, earlier["origin"], log_signer.key, log_signer.timestamper)
    hashes = consistency_proof(leaves, earlier["tree_size"], len(other))
    proof = {
        "first": earlier["tree_size"],
        "second": len(other),
        "hashes": [h.hex() for h in hashes],
    }
    paths = dict(grown, later=tmp_path / "forged.json", proof=tmp_path / "proof.json")
    paths["later"].write_text(json.dumps(forged))
    paths["proof"].write_text(json.dumps(proof))
    code, out = verify_consistency(paths, "--trust", str(root_pem))
    assert code == 1 and "does not extend the log of tree size" in out, out


def test_a_consistency_proof_for_other_sizes_says_which_to_ask_for(grown, tmp_path):
    proof = json.loads(grown["proof"].read_text())
    proof["first"] -= 1
    paths = dict(grown, proof=tmp_path / "proof.json")
    paths["proof"].write_text(json.dumps(proof))
    code, out = verify_consistency(paths)
    assert code == 1 and f"ask for ?first={proof['first'] + 1}&second={proof['second']}" in out


def test_checkpoints_in_the_wrong_order_are_refused(grown):
    code, out = verify_consistency(dict(grown, earlier=grown["later"], later=grown["earlier"]))
    assert code == 1 and "is larger than the later one" in out


def test_a_checkpoint_is_consistent_with_itself_and_not_with_another_log(grown):
    from kyso.audit.offline.proof_check import check_consistency

    later = json.loads(grown["later"].read_text())
    size = later["tree_size"]
    same = {"first": size, "second": size, "hashes": []}
    assert check_consistency(later, later, same).ok
    other_log = {**later, "origin": "another.example/audit"}
    report = check_consistency(later, other_log, same)
    assert not report.ok and any("not the log's own" in p for p in report.problems)  # body says otherwise
