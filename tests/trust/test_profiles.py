"""``[trust] profile = "vn"``: the Vietnam National Root CA shipped with kyso, pinned by its
SHA-256 (printed in the README), added to the configured roots; the public CAs'
intermediates that an operator adds lead to it."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyhanko_certvalidator import CertificateValidator
from support import make_config

from kyso.config import TRUST_PROFILES, load_config
from kyso.errors import ConfigError
from kyso.service import Kyso
from kyso.signer.verify.common import ChainResult, chain_names
from kyso.trust import profiles
from kyso.trust.profiles import PROFILES, profile_roots
from kyso.trust.store import TrustStore, load_certificates

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "trust" / "roots" / "vn"
# A public copy of an intermediate of VNPT-CA issued by the national root (2021-11-18 to
# 2026-11-18), as an operator would add it for path building.
VNPT_SMARTCA_RS = Path(__file__).parent / "data" / "vnpt-smartca-rs.pem"
VN_ROOT_SHA256 = "bac8bf609ab420a8ee1780d74f4de5c7f7184959d2a7375b0a75e4c29f0908e7"


def colon_hex(digest: str) -> str:
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()


@pytest.mark.parametrize("root", PROFILES["vn"], ids=lambda r: r.file)
def test_each_shipped_root_has_the_fingerprint_pinned_and_printed_in_the_readme(root) -> None:
    path = SHIPPED / root.file
    printed = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert printed.strip().endswith("=" + colon_hex(root.sha256))
    assert colon_hex(root.sha256) in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_vn_profile_is_the_2014_sha256_national_root() -> None:
    (der,) = profile_roots("vn")
    cert = TrustStore((der,)).roots()[0]
    assert cert.subject.native["common_name"] == "Vietnam National Root CA"
    assert cert.self_signed == "maybe" and cert.public_key.bit_size == 4096
    assert cert.signature_algo == "rsassa_pkcs1v15" and cert.hash_algo == "sha256"
    assert PROFILES["vn"][0].sha256 == VN_ROOT_SHA256
    assert set(TRUST_PROFILES) == set(PROFILES)


def test_the_profile_adds_to_the_configured_roots(root_pem: Path) -> None:
    plain = TrustStore.from_patterns([str(root_pem)])
    with_vn = TrustStore.from_patterns([str(root_pem)], profile="vn")
    assert len(with_vn.root_ders) == len(plain.root_ders) + 1
    assert set(plain.root_ders) < set(with_vn.root_ders)


def test_an_unknown_profile_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "kyso.toml"
    config.write_text('[trust]\nprofile = "fr"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match='profile must be one of vn, not .fr.'):
        load_config(config, env={})


def test_a_shipped_file_that_does_not_match_its_pin_stops_the_service(monkeypatch) -> None:
    altered = replace(PROFILES["vn"][0], sha256="00" * 32)
    monkeypatch.setitem(profiles.PROFILES, "vn", (altered,))
    with pytest.raises(ConfigError, match="does not match its pinned SHA-256"):
        profile_roots("vn")


def test_an_operator_added_intermediate_leads_to_the_national_root_and_is_named(root_pem: Path) -> None:
    store = TrustStore.from_patterns([str(root_pem)], profile="vn")
    intermediate = load_certificates(VNPT_SMARTCA_RS)[0]
    moment = datetime(2024, 1, 1, tzinfo=UTC)  # within the intermediate's validity
    path = asyncio.run(
        CertificateValidator(intermediate, validation_context=store.path_context((), moment))
        .async_validate_path()
    )  # the root's key verifies VNPT's certificate: the shipped bytes are the real key
    certs = list(path.iter_certs(include_root=True))
    assert certs[0].sha256.hex() == VN_ROOT_SHA256
    chain = ChainResult(True, "good", path=tuple(certs[1:]), anchor=certs[0])
    names = chain_names(chain, intermediate, (), store.roots())
    assert "VNPT SmartCA RS" in names[0] and "Vietnam National Root CA" in names[-1]


def test_kyso_verifies_with_the_profile_and_its_own_roots(tmp_path: Path) -> None:
    base = make_config(tmp_path)
    kyso = Kyso.open(replace(base, trust=replace(base.trust, profile="vn")))
    try:
        roots = kyso.verify_settings().trust_roots
    finally:
        kyso.close()
    fingerprints = {c.sha256.hex() for c in roots}
    assert VN_ROOT_SHA256 in fingerprints and len(fingerprints) == 2  # and the dev root
