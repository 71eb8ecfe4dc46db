"""Preparing the PDFs of one session for one signer: the size estimate and the signed
attributes are computed once, and each document's attributes are what pyHanko would make."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from asn1crypto import pem, x509
from support import corpus_pdfs

from kyso.signer import external
from kyso.signer.algorithms import ECDSA, PKCS1V15, PSS


def certificate(pki: Path, name: str) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor((pki / f"{name}.cert.pem").read_bytes())[2])


@pytest.mark.parametrize(("name", "algorithm"), [("dr-an", PKCS1V15), ("dr-an", PSS), ("dr-binh", ECDSA)])
def test_shared_signed_attributes_equal_those_pyhanko_makes_for_each_document(pki, name, algorithm):
    leaf, issuers = certificate(pki, name), [certificate(pki, "intermediate-ca")]
    preparation = external.PdfPreparation(leaf, issuers, algorithm, "B-T")

    async def both(digest: bytes) -> tuple[bytes, bytes]:
        own = await external.PdfPreparation(leaf, issuers, algorithm, "B-T").signed_attrs(digest)
        return await preparation.signed_attrs(digest), own

    for n in range(3):
        shared, own = asyncio.run(both(hashlib.sha256(bytes([n])).digest()))
        assert shared == own


def test_documents_prepared_with_one_preparation_reserve_the_same_room(pki):
    leaf, issuers = certificate(pki, "dr-an"), [certificate(pki, "intermediate-ca")]

    async def run() -> list[external.PreparedPdf]:
        preparation = external.PdfPreparation(leaf, issuers, PKCS1V15, "B-B")
        return [
            await external.prepare_pdf(p.read_bytes(), leaf, issuers, PKCS1V15, "B-B", preparation=preparation)
            for p in corpus_pdfs()[:2]
        ]

    first, second = asyncio.run(run())
    assert first.region[1] - first.region[0] == second.region[1] - second.region[0]
    assert first.signed_attrs != second.signed_attrs
