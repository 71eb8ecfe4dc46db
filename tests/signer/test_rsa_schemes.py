"""RSA keys sign with RSASSA-PSS by default (Circular 15/2025/TT-BKHCN), PKCS#1 v1.5 where
the key alias keeps it; both kinds of PAdES signature pass pdfsig, ``openssl cms`` and kyso."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asn1crypto import cms
from verifiers import openssl_cms_verify, pdfsig, signatures_of

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.keystore.software import load_software_key
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.signer.verify.pdf import verify_pdf

PKI = dev_pki_dir()


def seal(rsa_scheme: str):
    return load_software_key(
        f"seal-{rsa_scheme}", PKI / "hospital-seal.key.pem", DEV_PASSPHRASE,
        PKI / "hospital-seal.cert.pem", (str(PKI / "chain.pem"),), rsa_scheme=rsa_scheme,
    )  # fmt: skip


def signer_info(pdf: bytes) -> cms.SignerInfo:
    cms_der, _ = signatures_of(pdf)[-1]
    return cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]


@pytest.fixture(scope="module")
def minimal_pdf() -> bytes:
    from support import corpus_pdfs

    return corpus_pdfs()[0].read_bytes()


def test_an_rsa_key_signs_pades_with_rsassa_pss_by_default(dev_key, minimal_pdf) -> None:
    signed = asyncio.run(
        async_sign_pdf(minimal_pdf, dev_key("hospital-seal"), PdfSignOptions(level="B-B"), None)
    ).pdf
    algorithm = signer_info(signed)["signature_algorithm"]
    assert algorithm["algorithm"].native == "rsassa_pss"
    params = algorithm["parameters"].native
    assert params["hash_algorithm"]["algorithm"] == "sha256"
    assert params["mask_gen_algorithm"]["parameters"]["algorithm"] == "sha256"
    assert params["salt_length"] == 32


@pytest.mark.parametrize(("rsa_scheme", "mechanism"), [("pss", "rsassa_pss"), ("pkcs1v15", "sha256_rsa")])
def test_both_schemes_pass_pdfsig_openssl_cms_and_kyso(
    rsa_scheme: str, mechanism: str, minimal_pdf: bytes, tmp_path: Path, nssdb: str,
    root_pem: Path, settings,
) -> None:  # fmt: skip
    signed = asyncio.run(
        async_sign_pdf(minimal_pdf, seal(rsa_scheme), PdfSignOptions(level="B-B"), None)
    ).pdf
    assert signer_info(signed)["signature_algorithm"]["algorithm"].native == mechanism
    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)
    (verdict,) = pdfsig(out, nssdb)
    assert verdict.valid and verdict.trusted, verdict.text
    cms_der, content = signatures_of(signed)[-1]
    result = openssl_cms_verify(cms_der, content, root_pem, tmp_path)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    assert verify_pdf(signed, settings).indication == "TOTAL_PASSED"


def test_an_ec_key_is_untouched_by_the_rsa_setting(dev_key) -> None:
    info = dev_key("lab-seal").info
    assert (info.default_scheme, info.jws_alg) == ("ecdsa", "ES256")
