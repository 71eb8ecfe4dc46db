"""What the audit store hands out: typed rows, one class per kind of answer.

Each row is a frozen dataclass for the code that reads it (``entry.action``,
``row.audit_seq``) and, through :class:`Row`, also a read-only mapping over its fields:
the JSON object it is served as (``row.to_json()``, ``row["audit_seq"]``). The field
names are the JSON member names of SPEC sections 3, 5 and 7, so the type and the wire
shape cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any


class Row(Mapping[str, Any]):
    """A dataclass that reads as the mapping of its fields.

    Subclasses are declared ``eq=False`` so that equality is the Mapping's: a row equals
    the dict of its JSON object, which is what a test or a client compares it with.
    """

    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]

    def __getitem__(self, name: str) -> Any:
        if name not in self._names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this row (members in field order)."""
        return {name: getattr(self, name) for name in self._names()}


@dataclass(frozen=True)
class TreeState:
    """The log at one size: its Merkle root and the entry hash of its last entry (hex)."""

    tree_size: int
    root_hash: bytes
    chain_head: str


@dataclass(frozen=True, eq=False)
class LoggedEntry(Row):
    """One audit entry: exactly the members of the hashed entry object (SPEC 7)."""

    seq: int
    time: str
    actor: str | None
    action: str
    key: str | None
    record_id: str | None
    document_sha256: str | None
    signature_sha256: str | None
    outcome: str
    detail: dict[str, Any]
    prev_hash: str

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> LoggedEntry:
        return cls(**{name: entry[name] for name in _ENTRY_MEMBERS})


_ENTRY_MEMBERS = tuple(f.name for f in fields(LoggedEntry))


@dataclass(frozen=True, eq=False)
class InclusionProof(Row):
    """RFC 9162 inclusion proof of entry ``leaf_index`` in the tree of ``tree_size`` (hex)."""

    leaf_index: int
    tree_size: int
    root_hash: str
    hashes: list[str]


@dataclass(frozen=True, eq=False)
class ConsistencyProof(Row):
    """RFC 9162 consistency proof from tree size ``first`` to ``second`` (hex)."""

    first: int
    second: int
    first_root: str
    second_root: str
    hashes: list[str]


@dataclass(frozen=True, eq=False)
class RecordSignature(Row):
    """One signature made for a record, as ``GET /api/v1/records/<record_id>`` lists it."""

    audit_seq: int
    time: str
    key: str | None  # None for an extension: no key alias of ours signed it
    level: str
    document_sha256: str
    signature_sha256: str
    extend_before: str | None


@dataclass(frozen=True, eq=False)
class DueRecord(Row):
    """A record whose newest signed PDF must be extended before ``extend_before``."""

    record_id: str
    audit_seq: int
    level: str
    signature_sha256: str
    extend_before: str


@dataclass(frozen=True, eq=False)
class ListedRecord(Row):
    """A record as ``GET /api/v1/records`` lists it: its newest signature."""

    record_id: str
    audit_seq: int
    time: str
    key: str | None
    level: str
    signature_sha256: str
    extend_before: str | None


@dataclass(frozen=True)
class RecordFilter:
    """Which records a listing holds: ``record_id_prefix``, the newest signature's time in
    ``[since, until)`` (entry time format), newest signature below ``before_seq`` (a page's
    cursor)."""

    record_id_prefix: str | None = None
    since: str | None = None
    until: str | None = None
    before_seq: int | None = None


@dataclass(frozen=True, eq=False)
class Registration(Row):
    """Where a signed output was registered: the ``registered`` member of a report (SPEC 5)."""

    audit_seq: int
    record_id: str | None


def iso_seconds(moment: datetime | None) -> str | None:
    """``moment`` as ``YYYY-MM-DDThh:mm:ssZ`` (UTC), which sorts as it compares."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
