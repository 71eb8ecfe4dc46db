"""Keys too weak to sign are refused when the service starts (Circular 15/2025/TT-BKHCN:
RSA of at least 2048 bits, EC of at least 256), with a message that names the alias and the
size; the per-key ``rsa_scheme`` setting is checked there too."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kyso.config import load_config
from kyso.errors import ConfigError
from kyso.keystore import load_keystore

KYSO = str(Path(sys.executable).parent / "kyso")
PASSPHRASE = "weak key, test only"


def key_files(directory: Path, private_key) -> tuple[Path, Path]:
    """An encrypted PKCS#8 key file and a self-signed signing certificate for it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old seal")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(private_key, hashes.SHA256())
    )  # fmt: skip
    key_file, cert_file = directory / "old.key.pem", directory / "old.cert.pem"
    key_file.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def config_file(tmp_path: Path, private_key, extra: str = "") -> Path:
    key_file, cert_file = key_files(tmp_path, private_key)
    path = tmp_path / "kyso.toml"
    path.write_text(
        f'dev_pki = true\n\n[[keys]]\nalias = "old-seal"\nkey_file = "{key_file}"\n'
        f'cert_file = "{cert_file}"\npassphrase_env = "OLD_SEAL_PASSPHRASE"\n{extra}',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def rsa_1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)


def test_a_1024_bit_rsa_key_is_refused_at_start_up_naming_the_alias_and_its_size(
    tmp_path: Path, rsa_1024
) -> None:
    env = {"KYSO_DATA_DIR": str(tmp_path / "var"), "OLD_SEAL_PASSPHRASE": PASSPHRASE}
    config = load_config(config_file(tmp_path, rsa_1024), env=env)
    with pytest.raises(ConfigError, match=r"key alias 'old-seal' is refused: .*RSA key of 1024 bits"):
        load_keystore(config, env)


def test_kyso_serve_does_not_start_with_a_weak_key_and_says_why(tmp_path: Path, rsa_1024) -> None:
    path = config_file(tmp_path, rsa_1024)
    env = {**os.environ, "KYSO_CONFIG": str(path), "KYSO_DATA_DIR": str(tmp_path / "var"),
           "OLD_SEAL_PASSPHRASE": PASSPHRASE}  # fmt: skip
    done = subprocess.run(
        [KYSO, "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "old-seal" in done.stderr and "1024 bits" in done.stderr
    assert "at least 2048" in done.stderr


def test_an_ec_key_under_256_bits_is_refused(tmp_path: Path) -> None:
    env = {"KYSO_DATA_DIR": str(tmp_path / "var"), "OLD_SEAL_PASSPHRASE": PASSPHRASE}
    config = load_config(config_file(tmp_path, ec.generate_private_key(ec.SECP192R1())), env=env)
    with pytest.raises(ConfigError, match=r"'old-seal' is refused: .*EC key of 192 bits"):
        load_keystore(config, env)


def test_a_2048_bit_key_loads_and_signs_with_pss_unless_set_to_pkcs1_v15(tmp_path: Path) -> None:
    env = {"KYSO_DATA_DIR": str(tmp_path / "var"), "OLD_SEAL_PASSPHRASE": PASSPHRASE}
    key = rsa.generate_private_key(65537, 2048)
    default = load_keystore(load_config(config_file(tmp_path, key), env=env), env)
    assert default.get("old-seal").info.jws_alg == "PS256"
    kept = config_file(tmp_path, key, 'rsa_scheme = "pkcs1v15"\n')
    assert load_keystore(load_config(kept, env=env), env).get("old-seal").info.jws_alg == "RS256"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('rsa_scheme = "pkcs1"\n', 'rsa_scheme must be "pss" or "pkcs1v15"'),
        ('jws_alg = "RS256"\n', "jws_alg is replaced by rsa_scheme"),
    ],
)
def test_a_bad_rsa_scheme_setting_is_a_configuration_error(tmp_path: Path, line: str, message: str) -> None:
    key = rsa.generate_private_key(65537, 2048)
    with pytest.raises(ConfigError, match=message):
        load_config(config_file(tmp_path, key, line), env={"KYSO_DATA_DIR": str(tmp_path)})
