"""The audit entry format (kyso.audit.entry) and the checkpoint text (checkpoint_format)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kyso.audit.checkpoint_format import checkpoint_body, parse_checkpoint_body
from kyso.audit.entry import (
    ENTRY_FIELDS,
    GENESIS_PREV_HASH,
    entry_canonical,
    entry_hash,
    entry_hash_hex,
    entry_line,
    format_time,
    line_hash,
    parse_time,
    validate_entry_shape,
)
from kyso.errors import InvalidJson
from kyso.formats import canonical_json


def make_entry(**changes) -> dict:
    entry = {
        "seq": 0,
        "time": "2026-01-01T00:00:00.000000Z",
        "actor": "his-main",
        "action": "sign.pdf",
        "key": "hospital-seal",
        "record_id": "encounter/123/discharge",
        "document_sha256": "ab" * 32,
        "signature_sha256": "cd" * 32,
        "outcome": "ok",
        "detail": {"level": "B-T"},
        "prev_hash": GENESIS_PREV_HASH,
    }
    entry.update(changes)
    return entry


def test_an_entry_has_exactly_the_members_of_the_spec():
    assert ENTRY_FIELDS == (
        "seq", "time", "actor", "action", "key", "record_id", "document_sha256",
        "signature_sha256", "outcome", "detail", "prev_hash",
    )  # fmt: skip
    assert GENESIS_PREV_HASH == "0" * 64


def test_the_entry_hash_is_the_rfc9162_leaf_hash_of_the_jcs_bytes():
    entry = make_entry(detail={"b": 1, "a": "Hà Nội"})
    jcs = entry_line(entry).rstrip(b"\n")
    assert jcs.startswith(
        b'{"action":"sign.pdf","actor":"his-main","detail":{"a":"H\xc3\xa0 N\xe1\xbb\x99i","b":1}'
    )
    assert entry_hash(entry) == hashlib.sha256(b"\x00" + jcs).digest()
    assert entry_hash_hex(entry) == entry_hash(entry).hex()
    assert line_hash(jcs) == entry_hash(entry)
    assert len(entry_hash(entry)) == 32


def test_member_order_does_not_change_the_entry_hash():
    entry = make_entry()
    assert entry_hash(dict(reversed(list(entry.items())))) == entry_hash(entry)


def test_time_is_utc_with_microseconds():
    moment = datetime(2026, 3, 4, 12, 30, 5, 7, tzinfo=timezone(timedelta(hours=7)))
    assert format_time(moment) == "2026-03-04T05:30:05.000007Z"
    assert parse_time(format_time(moment)) == moment
    assert format_time(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="aware"):
        format_time(datetime(2026, 1, 1))


def test_a_well_formed_entry_has_no_problems():
    assert validate_entry_shape(make_entry()) == []
    assert validate_entry_shape(make_entry(actor=None, key=None, record_id=None, document_sha256=None,
                                           signature_sha256=None, outcome="denied", detail={})) == []  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq must be an integer"),
        ({"seq": "3"}, "seq must be an integer"),
        ({"time": "2026-01-01T00:00:00Z"}, "time"),
        ({"time": "2026-02-30T00:00:00.000000Z"}, "time"),
        ({"actor": 5}, "actor"),
        ({"action": ""}, "action"),
        ({"key": ["a"]}, "key"),
        ({"record_id": {}}, "record_id"),
        ({"document_sha256": "AB" * 32}, "document_sha256"),
        ({"signature_sha256": "ab"}, "signature_sha256"),
        ({"outcome": "success"}, "outcome"),
        ({"detail": None}, "detail"),
        ({"detail": []}, "detail"),
        ({"prev_hash": None}, "prev_hash"),
        ({"prev_hash": "0" * 63}, "prev_hash"),
    ],
)
def test_each_malformed_member_is_named(changes, needle):
    problems = validate_entry_shape(make_entry(**changes))
    assert len(problems) == 1 and needle in problems[0], problems


def test_missing_and_extra_members_are_listed():
    entry = make_entry(patient_name="not allowed")
    del entry["outcome"], entry["key"]
    problems = validate_entry_shape(entry)
    assert "missing member(s): key, outcome" in problems
    assert "unexpected member(s): patient_name" in problems


def test_something_other_than_an_object_is_not_an_entry():
    assert validate_entry_shape([1, 2]) == ["entry must be a JSON object, not an array"]


def test_a_checkpoint_body_is_a_c2sp_note_with_a_chain_head_line():
    root = hashlib.sha256(b"root").digest()
    body = checkpoint_body("kyso.example/audit", 1234, root, "ef" * 32)
    assert (
        body
        == f"kyso.example/audit\n1234\n{base64.b64encode(root).decode()}\nchain_head {'ef' * 32}\n"
    )
    parsed = parse_checkpoint_body(body)
    assert (parsed.origin, parsed.tree_size, parsed.root_hash, parsed.chain_head) == (
        "kyso.example/audit", 1234, root, "ef" * 32
    )  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        "kyso\n12\nAAAA\nchain_head " + "0" * 64,  # no final newline
        "kyso\n012\n" + base64.b64encode(bytes(32)).decode() + "\nchain_head " + "0" * 64 + "\n",
        "kyso\n12\n" + base64.b64encode(bytes(31)).decode() + "\nchain_head " + "0" * 64 + "\n",
        "kyso\n12\n" + base64.b64encode(bytes(32)).decode() + "\nchain_head " + "0" * 63 + "\n",
        "kyso\n12\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "\n12\n" + base64.b64encode(bytes(32)).decode() + "\nchain_head " + "0" * 64 + "\n",
        "kyso\n12\n"
        + base64.b64encode(bytes(32)).decode()
        + "\nchain_head "
        + "0" * 64
        + "\nextra\n",
    ],
    ids=[
        "no-newline",
        "leading-zero",
        "short-root",
        "short-head",
        "no-head",
        "no-origin",
        "extra-line",
    ],
)
def test_a_malformed_checkpoint_body_is_refused(body):
    with pytest.raises(ValueError):
        parse_checkpoint_body(body)


TRICKY_STRINGS = [
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "".join(chr(c) for c in range(0x20)) + "\x7f",
    "Giấy ra viện, bệnh án số 7",
    "\u2028\u2029 line separators",
    "\ufeff\uffff astral \U0001f600 \U00010000",
    "<script>&amp;</script>",
]


@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_an_entry_of_plain_values_is_written_as_the_jcs_library_writes_it(text: str) -> None:
    entry = {
        "seq": 9007199254740991,
        "time": text,
        "actor": None,
        "action": text,
        "detail": {"z": [text, -9007199254740991, 0, True, False, None, {}, []], "A": {"b": text}, "": 1},
        "prev_hash": "0" * 64,
    }
    assert entry_canonical(entry) == canonical_json(entry)


@pytest.mark.parametrize(
    "detail",
    [{"ratio": 0.1}, {"big": 2**60}, {"\U0001f600": 1, "\uffff": 2}, {"é": 1}, {"t": (1, 2)}],
)
def test_an_entry_with_values_jcs_writes_its_own_way_goes_through_the_jcs_library(
    detail: dict[str, object],
) -> None:
    entry = {"seq": 1, "detail": detail}
    try:
        expected = canonical_json(entry)
    except InvalidJson:
        with pytest.raises(InvalidJson):
            entry_canonical(entry)
        return
    assert entry_canonical(entry) == expected


def test_a_lone_surrogate_in_an_entry_is_refused_as_the_jcs_library_refuses_it() -> None:
    with pytest.raises(InvalidJson):
        entry_canonical({"action": "\ud800"})
