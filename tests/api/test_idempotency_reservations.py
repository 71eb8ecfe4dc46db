"""Idempotency-Key reservations: what a crash between the steps of a request leaves behind."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, select, update
from support import Service, corpus_pdfs

from kyso.audit.store import EntryDraft
from kyso.db import idempotency
from kyso.db.reservations import (
    LEASE_SECONDS,
    IdempotentCall,
    Reservation,
    ReservationLost,
    Reservations,
    StoredAnswer,
    fulfil,
)

PDF = corpus_pdfs()[3].read_bytes()


def sign(service: Service, key: str):
    return service.client.post(
        "/api/v1/sign/pdf?key=hospital-seal&level=B-B&record_id=idem/2",
        data=PDF,
        headers={**service.auth(), "Content-Type": "application/pdf", "Idempotency-Key": key},
    )


def fingerprint_of(service: Service, key: str) -> str:
    """The request hash the first request stored (read back from its row)."""
    with service.kyso.db.reader.connect() as conn:
        return conn.execute(select(idempotency.c.request_hash).where(idempotency.c.key == key)).scalar_one()


def test_a_claim_left_by_a_crash_before_the_commit_is_taken_over_after_its_lease(service: Service) -> None:
    first = sign(service, "crash-before")
    assert first.status_code == 200
    # Make the row what a crash before the audit commit leaves: claimed, not fulfilled, old.
    with service.kyso.db.writer.begin() as conn:
        conn.execute(
            update(idempotency)
            .where(idempotency.c.key == "crash-before")
            .values(status=None, headers=None, body=None, audit_seq=None, created=time.time() - LEASE_SECONDS - 1)
        )
    size = service.kyso.audit.size()
    again = sign(service, "crash-before")
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    assert service.kyso.audit.size() == size + 1  # nothing was done under the old claim
    assert sign(service, "crash-before").get_data() == again.get_data()


def test_an_answer_lost_after_the_commit_is_never_signed_again(service: Service) -> None:
    first = sign(service, "crash-after")
    seq = int(first.headers["Kyso-Audit-Seq"])
    with service.kyso.db.writer.begin() as conn:
        conn.execute(
            update(idempotency)
            .where(idempotency.c.key == "crash-after")
            .values(status=None, headers=None, body=None, created=time.time() - LEASE_SECONDS - 1)
        )
    size = service.kyso.audit.size()
    again = sign(service, "crash-after")
    assert (again.status_code, again.json["code"]) == (409, "idempotency_conflict")
    assert f"audit entry {seq}" in again.json["detail"]
    entries = service.kyso.audit.entries(after=size - 1, limit=10)
    assert [e.action for e in entries] == ["sign.pdf"] and entries[0].outcome == "error"


def test_a_reservation_taken_over_cannot_be_fulfilled_by_its_first_holder(service: Service) -> None:
    kyso = service.kyso
    reservations = Reservations(kyso.db, keep_seconds=3600)
    call = IdempotentCall("his", "taken-over", "a" * 64)
    mine = reservations.claim(call)
    assert isinstance(mine, Reservation)
    with kyso.db.writer.begin() as conn:
        conn.execute(update(idempotency).where(idempotency.c.key == "taken-over").values(created=0.0))
    theirs = reservations.claim(call)
    assert isinstance(theirs, Reservation) and theirs.token != mine.token
    size = kyso.audit.size()
    with pytest.raises(ReservationLost):
        with kyso.audit.appending() as batch:
            appended = batch.append(EntryDraft(action="test", actor="his"))
            fulfil(batch.conn, mine, appended.seq)
    assert kyso.audit.size() == size  # the first holder's entry was rolled back
    with kyso.audit.appending() as batch:
        fulfil(batch.conn, theirs, batch.append(EntryDraft(action="test", actor="his")).seq)
    reservations.answer(theirs, StoredAnswer(200, {"Content-Type": "text/plain"}, b"done"))
    assert reservations.claim(call) == StoredAnswer(200, {"Content-Type": "text/plain"}, b"done")


def test_answers_kept_before_reservations_still_replay(service: Service) -> None:
    first = sign(service, "old-row")
    request_hash = fingerprint_of(service, "old-row")
    with service.kyso.db.writer.begin() as conn:
        conn.execute(idempotency.delete().where(idempotency.c.key == "old-row"))
        conn.execute(
            insert(idempotency).values(
                client="his",
                key="old-row",
                request_hash=request_hash,
                status=200,
                headers='{"Content-Type": "application/pdf"}',
                body=first.get_data(),
                created=time.time(),
            )
        )
    again = sign(service, "old-row")
    assert again.status_code == 200 and again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
