"""The offline verifier (kyso.audit.offline.verify) on exports built here, untouched and tampered."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from chains import ORIGIN, build_chain, export, rechain, signed_checkpoint

from kyso.audit.entry import entry_hash_hex
from kyso.audit.offline import parallel_scan
from kyso.audit.offline import verify as verify_module
from kyso.audit.offline.verify import VerifyReport, load_checkpoints, verify_export

SIGNER = None  # the LogSigner fixture, for checkpoint() below


@pytest.fixture(autouse=True, scope="module")
def _signer(log_signer):
    global SIGNER
    SIGNER = log_signer


def checkpoint(entries: list[dict], size: int) -> dict:
    """A checkpoint of the first ``size`` entries, signed by the dev log key and timestamped."""
    return signed_checkpoint(SIGNER, entries, size)


@pytest.fixture(scope="module")
def pristine() -> list[dict]:
    return build_chain(50)


@pytest.fixture
def chain(pristine) -> list[dict]:
    return copy.deepcopy(pristine)


@dataclass
class Mode:
    """How the export reaches the verifier: as lines (fast path, or ``full`` parsing every
    line), or ``parallel``: as a file cut into small pieces checked by forked processes."""

    name: str
    tmp: Path


@pytest.fixture(params=["fast", "full", "parallel"])
def mode(request, tmp_path, monkeypatch) -> Mode:
    if request.param == "parallel":
        monkeypatch.setattr(parallel_scan, "MIN_PIECE", 1500)  # a few entries a piece
    return Mode(request.param, tmp_path)


def check(mode: Mode, lines: list[bytes], *args, **kwargs) -> VerifyReport:
    """verify_export in the given mode; in ``parallel``, also that the pieces were used."""
    if mode.name != "parallel":
        return verify_export(lines, *args, full=mode.name == "full", **kwargs)
    path = mode.tmp / f"export-{len(list(mode.tmp.iterdir()))}.jsonl"
    path.write_bytes(b"".join(lines))
    calls: list[int] = []
    real = parallel_scan.scan_in_parallel

    def spy(file, workers, *more, **options):
        calls.append(workers)
        return real(file, workers, *more, **options)

    with pytest.MonkeyPatch.context() as patch, path.open("rb") as file:
        patch.setattr(verify_module, "scan_in_parallel", spy)
        report = verify_export(file, *args, workers=2, **kwargs)
    assert calls == [2] or not lines
    return report


def test_an_untouched_export_verifies(chain, mode, dev_root):
    cps = [checkpoint(chain, size) for size in (0, 10, 20, 50)]
    report = check(mode, export(chain, cps), trust=dev_root)
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints_checked, report.first_bad_seq) == (50, 4, None)
    assert report.root_hash == cps[-1]["root_hash"] and report.chain_head == cps[-1]["chain_head"]
    assert report.problem == "" and report.notes == []


def test_an_untouched_export_verifies_from_a_binary_file_a_text_file_and_bare_lines(
    chain, tmp_path
):
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(export(chain, [checkpoint(chain, 50)])))
    with path.open("rb") as binary:
        assert verify_export(binary).ok
    with path.open(encoding="utf-8") as text:
        assert verify_export(text).ok
    assert verify_export(path.read_bytes().splitlines()).ok


def test_an_export_without_checkpoints_verifies_but_says_what_that_leaves_open(chain, dev_root):
    report = verify_export(export(chain))
    assert report.ok and "only a signed checkpoint proves" in report.notes[0]
    report = verify_export(export(chain, [checkpoint(chain, 30)]), trust=dev_root)
    assert report.ok and report.notes == [
        "entries seq 30 to 49 come after the last checkpoint; only the hash chain covers them"
    ]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("time", "2026-01-01T00:00:20.000021Z"),
        ("actor", "intruder"),
        ("action", "sign.json"),
        ("key", "lab-seal"),
        ("record_id", "encounter/999/discharge"),
        ("document_sha256", "ee" * 32),
        ("signature_sha256", "ff" * 32),
        ("outcome", "error"),
        ("detail", {"level": "B-B"}),
    ],
)
def test_changing_a_member_of_a_middle_entry_names_that_entry(chain, mode, member, value):
    chain[20][member] = value
    report = check(mode, export(chain))
    assert not report.ok and report.first_bad_seq == 20
    assert (
        report.problem
        == "entry seq 20: entry_hash does not match the prev_hash of seq 21 (entry changed)"
    )


def test_changing_the_seq_of_a_middle_entry_names_that_entry(chain, mode):
    chain[20]["seq"] = 99
    report = check(mode, export(chain))
    assert (report.first_bad_seq, report.problem) == (
        20,
        "entry seq 20: its seq member was changed to 99",
    )


def test_changing_the_prev_hash_of_a_middle_entry_names_that_entry(chain, mode):
    chain[20]["prev_hash"] = "11" * 32
    report = check(mode, export(chain))
    assert report.first_bad_seq == 20 and report.problem.startswith(
        "entry seq 20 changed: its prev_hash"
    )


def test_changing_the_first_entry_names_it(chain, mode):
    chain[0]["prev_hash"] = "22" * 32
    assert check(mode, export(chain)).first_bad_seq == 0
    chain = rechain(chain)
    chain[0]["actor"] = "intruder"
    assert check(mode, export(chain)).first_bad_seq == 0


def test_editing_a_line_by_hand_names_that_entry(chain, mode):
    lines = export(chain)
    lines[20] = lines[20].replace(b'"outcome":"ok"', b'"outcome":"denied"')
    report = check(mode, lines)
    assert report.first_bad_seq == 20 and "entry seq 20" in report.problem


def test_a_reformatted_line_verifies_by_its_content_with_a_note(chain, mode):
    lines = export(chain)
    lines[20] = json.dumps(chain[20], ensure_ascii=False).encode() + b"\n"
    report = check(mode, lines)
    assert report.ok and (report.reserialized, report.first_reserialized_seq) == (1, 20)
    assert "1 entry line (the first: seq 20) are not the canonical RFC 8785 bytes" in report.notes[-1]


def test_an_entry_with_an_extra_member_is_named(chain, mode):
    chain[20]["patient_name"] = "Nguyễn Văn A"
    report = check(mode, export(chain))
    assert report.first_bad_seq == 20 and "unexpected member(s): patient_name" in report.problem


def test_a_changed_last_entry_is_caught_only_by_a_checkpoint_covering_it(chain, mode):
    cp49, cp50 = checkpoint(chain, 49), checkpoint(chain, 50)
    chain[49]["outcome"] = "ok" if chain[49]["outcome"] != "ok" else "denied"
    assert check(mode, export(chain)).ok  # nothing after it commits to it
    report = check(mode, export(chain), [cp50])
    assert not report.ok and report.bad_checkpoint == (50, ORIGIN)
    assert "chain_head is not the entry hash of seq 49" in report.problem
    report = check(mode, export(chain), [cp49, cp50])
    assert report.first_bad_seq == 49 and "entry seq 49 was changed" in report.problem


def test_a_removed_entry_is_named(chain, mode):
    del chain[20]
    report = check(mode, export(chain))
    assert (report.first_bad_seq, report.problem) == (20, "entry seq 20 missing (removed)")


def test_removed_entries_at_the_start_are_named(chain, mode):
    report = check(mode, export(chain[2:]))
    assert (report.first_bad_seq, report.problem) == (0, "entries seq 0 to 1 missing (removed)")


def test_an_inserted_copy_of_an_entry_is_named(chain, mode):
    lines = export(chain)
    lines.insert(21, lines[20])
    report = check(mode, lines)
    assert report.first_bad_seq == 21 and "entry seq 20 appears again" in report.problem


def test_an_inserted_entry_that_links_correctly_is_named(chain, mode):
    forged = dict(chain[20], seq=21, actor="intruder", prev_hash=entry_hash_hex(chain[20]))
    for entry in chain[21:]:
        entry["seq"] += 1  # renumbered, but not re-hashed
    chain.insert(21, forged)
    report = check(mode, export(chain))
    assert (report.first_bad_seq, report.problem) == (
        21,
        "entry seq 21 was inserted: entry seq 22 links to seq 20",
    )


def test_two_swapped_neighbours_are_named(chain, mode):
    lines = export(chain)
    lines[20], lines[21] = lines[21], lines[20]
    report = check(mode, lines)
    assert report.first_bad_seq == 20 and "reordered" in report.problem


def test_two_distant_swapped_entries_are_named(chain, mode):
    lines = export(chain)
    lines[10], lines[30] = lines[30], lines[10]
    report = check(mode, lines)
    assert (
        report.first_bad_seq == 10 and "entry seq 30 stands where seq 10 belongs" in report.problem
    )


def test_two_swapped_entries_with_their_seqs_renumbered_are_named(chain, mode):
    chain[20], chain[21] = chain[21], chain[20]
    chain[20]["seq"], chain[21]["seq"] = 20, 21
    report = check(mode, export(chain))
    assert report.first_bad_seq == 20 and "entry seq 20" in report.problem


def test_a_rewritten_and_rehashed_log_fails_against_a_checkpoint_made_before(chain, mode):
    earlier = [checkpoint(chain, size) for size in (8, 20, 40)]
    chain[10]["outcome"] = "error"
    rechain(chain, 11)
    assert check(mode, export(chain)).ok  # consistent in itself
    for report in (
        check(mode, export(chain), earlier),  # the auditor's own copies
        check(mode, export(chain, earlier)),  # left in the export
    ):
        assert not report.ok and report.bad_checkpoint == (20, ORIGIN)
        assert "rewritten and re-hashed" in report.problem
        assert "the first changed entry is among seq 8 to 19" in report.problem
        assert report.first_bad_seq is None


def test_checkpoints_on_both_sides_of_a_rewritten_entry_name_it(pristine, chain):
    around = [checkpoint(chain, 10), checkpoint(chain, 11)]
    chain[10]["actor"] = "intruder"
    rechain(chain, 11)
    report = verify_export(export(chain), around)
    assert report.first_bad_seq == 10 and report.bad_checkpoint == (11, ORIGIN)


def test_a_cut_off_tail_fails_against_an_earlier_checkpoint(chain, mode):
    cps = {size: checkpoint(chain, size) for size in (20, 40, 50)}
    lines = export(chain[:45], [cps[20], cps[40]])  # the last 5 entries and checkpoint 50 gone
    assert check(mode, lines).ok
    report = check(mode, lines, [cps[50]])
    assert not report.ok and report.bad_checkpoint == (50, ORIGIN) and report.first_bad_seq == 45
    assert "entries seq 45 to 49 were cut off (removed)" in report.problem


def test_a_checkpoint_against_an_empty_export_says_everything_was_cut_off(chain):
    report = verify_export([], [checkpoint(chain, 50)])
    assert report.first_bad_seq == 0 and "holds no entries" in report.problem
    assert verify_export([]).ok


@pytest.mark.parametrize(
    ("index", "garbage", "needle"),
    [
        (20, b"this is not json\n", "line 21, where entry seq 20 belongs: not valid JSON"),
        (20, b'{"hello": "world"}\n', "line 21: neither an audit entry nor a checkpoint"),
        (
            49,
            b'{"action":"sign.pdf","actor":"his-m\n',
            "line 50, where entry seq 49 belongs: not valid JSON",
        ),
        (51, b"\x00\x01 binary junk\n", "line 52: not valid JSON among the checkpoints"),
    ],
    ids=["middle", "stray-object", "truncated-last", "after-checkpoints"],
)
def test_a_garbage_line_is_a_clear_problem(chain, mode, index, garbage, needle):
    lines = export(chain, [checkpoint(chain, 40), checkpoint(chain, 50)])
    lines[index] = garbage
    report = check(mode, lines)
    assert not report.ok and needle in report.problem, report.problem


def test_an_entry_after_the_checkpoints_is_a_problem(chain):
    lines = export(chain[:40], [checkpoint(chain, 40)]) + export(chain[40:])
    report = verify_export(lines)
    assert not report.ok and "after the checkpoints" in report.problem


def test_blank_lines_are_ignored(chain):
    lines = export(chain, [checkpoint(chain, 50)])
    lines[10:10] = [b"\n", b"   \n"]
    assert verify_export(lines).ok


def test_a_checkpoint_whose_signed_body_disagrees_with_its_members_is_named(chain):
    cp = checkpoint(chain, 30)
    cp["root_hash"] = checkpoint(chain, 29)["root_hash"]
    report = verify_export(export(chain), [cp])
    assert report.bad_checkpoint == (30, ORIGIN)
    assert "signed body states a different root_hash" in report.problem


def test_a_checkpoint_of_another_log_is_named(chain):
    other = build_chain(30)
    other[5]["actor"] = "someone else"
    report = verify_export(export(chain), [checkpoint(rechain(other), 30)])
    assert report.bad_checkpoint == (30, ORIGIN) and "no longer matches" in report.problem


def test_a_malformed_checkpoint_is_named(chain):
    report = verify_export(export(chain), [{"tree_size": "ten", "body": 5}])
    assert not report.ok and "malformed checkpoint" in report.problem


def test_checkpoint_files_hold_one_object_or_json_lines(chain):
    cps = [checkpoint(chain, 10), checkpoint(chain, 20)]
    assert load_checkpoints(json.dumps(cps[0]).encode()) == cps[:1]
    assert load_checkpoints(b"\n".join(json.dumps(cp).encode() for cp in cps)) == cps
    assert load_checkpoints(json.dumps(cps).encode()) == cps


def test_a_long_export_is_checked_in_batches_and_tampering_deep_inside_is_found():
    chain = build_chain(1000)
    cps = [checkpoint(chain, size) for size in (256, 300, 777, 1000)]
    seen: list[int] = []
    report = verify_export(export(chain, cps), progress=seen.append)
    assert report.ok and report.checkpoints_checked == 4 and seen[-1] == 1000
    assert report.root_hash == cps[-1]["root_hash"]
    changed = copy.deepcopy(chain)
    changed[600]["record_id"] = "encounter/forged"
    assert verify_export(export(changed, cps)).first_bad_seq == 600
    rechain(changed, 601)
    report = verify_export(export(changed, cps))
    assert report.bad_checkpoint == (777, ORIGIN) and "among seq 300 to 776" in report.problem


def test_a_long_export_read_from_a_binary_file_in_blocks_names_what_was_changed(tmp_path, dev_root):
    chain = build_chain(4000)  # about 1.4 MB: more than one block of the file reader
    cps = [checkpoint(chain, size) for size in (1000, 3000, 4000)]
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(export(chain, cps)))
    with path.open("rb") as f:
        report = verify_export(f, trust=dev_root)
    assert report.ok and report.checkpoints_checked == 3 and report.entries == 4000
    lines = export(chain, cps)
    lines[3500] = lines[3500].replace(b'"actor":"his-main"', b'"actor":"intruder"')
    path.write_bytes(b"".join(lines))
    with path.open("rb") as f:
        report = verify_export(f, trust=dev_root)
    assert report.first_bad_seq == 3500 and "entry seq 3500" in report.problem
    lines = export(chain, cps)
    del lines[2999]
    path.write_bytes(b"".join(lines))
    with path.open("rb") as f:
        assert verify_export(f).first_bad_seq == 2999
