"""SoftHSM2 tokens for tests, made with the real tools (softhsm2-util, pkcs11-tool).

A process reads ``SOFTHSM2_CONF`` once, when it initialises the module, so every test of one
pytest process shares ONE SoftHSM configuration: call :func:`process_softhsm` from a
session-scoped fixture (any test folder) and add the tokens you need with :func:`init_token`.
Tokens are written by subprocesses, so the test process's own PKCS#11 state stays exactly what
the code under test made it; kyso notices tokens added later (it re-reads the slots of a module
when a label is missing).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "so-pin-0000"

_ACTIVE: SoftHsm | None = None


@dataclass(frozen=True)
class SoftHsm:
    """The SoftHSM of this test process: its configuration file and token directory."""

    conf: Path
    tokendir: Path
    module: str = MODULE


def make_softhsm_env(tmpdir: Path) -> dict[str, str]:
    """Write a SoftHSM configuration with its tokens under ``tmpdir``; its environment."""
    tokendir = tmpdir / "tokens"
    tokendir.mkdir(parents=True, exist_ok=True)
    conf = tmpdir / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    return {"SOFTHSM2_CONF": str(conf)}


def process_softhsm(tmpdir: Path) -> SoftHsm:
    """The one SoftHSM of this process, created under ``tmpdir`` on the first call."""
    global _ACTIVE
    if _ACTIVE is None:
        env = make_softhsm_env(tmpdir)
        os.environ.update(env)
        conf = Path(env["SOFTHSM2_CONF"])
        _ACTIVE = SoftHsm(conf=conf, tokendir=tmpdir / "tokens")
    return _ACTIVE


def _run(*args: str) -> str:
    """Run a token tool against this process's SoftHSM; its standard output."""
    done = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def _tool(token_label: str, pin: str, *args: str) -> str:
    return _run("pkcs11-tool", "--module", MODULE, "--token-label", token_label, "--login",
                "--pin", pin, *args)  # fmt: skip


def init_token(label: str, so_pin: str, pin: str) -> Path:
    """Initialise a free SoftHSM slot as token ``label``; the token's own directory."""
    tokendir = Path(_require_active().tokendir)
    before = set(tokendir.iterdir())
    _run("softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", so_pin,
         "--pin", pin)  # fmt: skip
    (created,) = set(tokendir.iterdir()) - before
    return created


def _require_active() -> SoftHsm:
    if _ACTIVE is None:
        raise RuntimeError("call process_softhsm() first")
    return _ACTIVE


def _write_der(der: bytes) -> Path:
    handle, name = tempfile.mkstemp(suffix=".der")
    with os.fdopen(handle, "wb") as out:
        out.write(der)
    return Path(name)


def write_certificate(
    token_label: str, pin: str, cert: x509.Certificate, label: str, key_id: bytes
) -> None:
    """Put ``cert`` on the token as a certificate object with ``label`` and CKA_ID ``key_id``."""
    path = _write_der(cert.public_bytes(serialization.Encoding.DER))
    try:
        _tool(token_label, pin, "--write-object", str(path), "--type", "cert",
              "--label", label, "--id", key_id.hex())  # fmt: skip
    finally:
        path.unlink()


def import_key_and_cert(
    token_label: str,
    pin: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    key_label: str,
    key_id: bytes,
) -> None:
    """Import a private key (sensitive: it cannot be read back) and its certificate."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = _write_der(der)
    try:
        _tool(token_label, pin, "--write-object", str(path), "--type", "privkey",
              "--label", key_label, "--id", key_id.hex(), "--usage-sign", "--sensitive")  # fmt: skip
    finally:
        path.unlink()
    write_certificate(token_label, pin, cert, key_label, key_id)


def generate_ec_key_on_token(
    token_label: str, pin: str, key_label: str, key_id: bytes, always_authenticate: bool = False
) -> ec.EllipticCurvePublicKey:
    """A P-256 key pair made by the token (sensitive, never extractable); its public key.

    ``always_authenticate`` makes the key ask for the PIN at every signature, as qualified
    signature keys on clinicians' cards do.
    """
    extra = ["--always-auth"] if always_authenticate else []
    _tool(token_label, pin, "--keypairgen", "--key-type", "EC:prime256v1", "--label", key_label,
          "--id", key_id.hex(), "--usage-sign", "--sensitive", *extra)  # fmt: skip
    handle, name = tempfile.mkstemp(suffix=".der")
    os.close(handle)
    try:
        _tool(token_label, pin, "--read-object", "--type", "pubkey", "--label", key_label,
              "-o", name)  # fmt: skip
        public_key = serialization.load_der_public_key(Path(name).read_bytes())
    finally:
        os.unlink(name)
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return public_key


def private_key_access(token_label: str, pin: str, key_label: str) -> str:
    """pkcs11-tool's ``Access:`` line for the private key (``sensitive, never extractable``...)."""
    listing = _tool(token_label, pin, "--list-objects", "--type", "privkey")
    # pkcs11-tool ignores --label when listing: find the key's block among all private keys.
    for block in listing.split("Private Key Object")[1:]:
        fields = dict(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in block.splitlines()[1:])
        )
        if fields.get("label") == key_label:
            return fields["Access"]
    raise LookupError(f"no private key labelled {key_label!r} on {token_label!r}")


@contextmanager
def token_pulled_out(token_dir: Path) -> Iterator[None]:
    """The token is gone while inside: its directory is moved away, then put back.

    SoftHSM then fails like a pulled USB token: key and session handles become invalid,
    and the slot stops answering until the module re-reads its slots. The directory must leave
    the token directory: SoftHSM takes every directory in it for a token.
    """
    away = token_dir.parent.parent / f"{token_dir.name}.pulled-out"
    token_dir.rename(away)
    try:
        yield
    finally:
        away.rename(token_dir)


@dataclass(frozen=True)
class TestCa:
    """A throw-away CA that certifies token keys."""

    __test__ = False  # not a pytest test class

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str = "kyso test token CA") -> TestCa:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, common_name: str
    ) -> x509.Certificate:
        """A signing certificate for ``public_key``."""
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kyso tests"),
            ]
        )
        return (
            _builder(subject, self.cert.subject, public_key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_SIGNING_USAGE, critical=True)
            .sign(self.key, hashes.SHA256())
        )


_SIGNING_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
    )


@dataclass(frozen=True)
class Token:
    """A SoftHSM token made for the tests."""

    label: str
    pin: str
    directory: Path
    certificates: dict[str, x509.Certificate]  # by key label


@dataclass(frozen=True)
class Hsm:
    """The tokens of this test process."""

    module: str
    ca: TestCa
    tokens: dict[str, Token]


def token_with_keys(ca: TestCa, label: str, pin: str, prefix: str) -> Token:
    """A new token with an imported RSA-2048 key ``PREFIX-rsa`` (CKA_ID 01), an EC P-256 key
    ``PREFIX-ec`` (CKA_ID 02) generated on it, and ``PREFIX-qes`` (CKA_ID 03), generated too and
    asking for the PIN at every signature; each with a certificate from ``ca``."""
    directory = init_token(label, SO_PIN, pin)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_cert = ca.issue(rsa_key.public_key(), f"{prefix} RSA")
    import_key_and_cert(label, pin, rsa_key, rsa_cert, f"{prefix}-rsa", b"\x01")
    ec_public = generate_ec_key_on_token(label, pin, f"{prefix}-ec", b"\x02")
    ec_cert = ca.issue(ec_public, f"{prefix} EC")
    write_certificate(label, pin, ec_cert, f"{prefix}-ec", b"\x02")
    qes_public = generate_ec_key_on_token(label, pin, f"{prefix}-qes", b"\x03", True)
    qes_cert = ca.issue(qes_public, f"{prefix} QES")
    write_certificate(label, pin, qes_cert, f"{prefix}-qes", b"\x03")
    certificates = {f"{prefix}-rsa": rsa_cert, f"{prefix}-ec": ec_cert, f"{prefix}-qes": qes_cert}
    return Token(label, pin, directory, certificates)


# Worker processes that sign with kyso's PKCS#11 keys (multiprocessing imports this module by
# name in spawned children, so the worker lives here rather than in a test file).

KeySpec = tuple[str, str, str, str, str]  # alias, module, token label, key label, PIN
INHERITED_KEYS: list[Any] = []  # keys a parent made (and used) before forking


def sign_in_worker(
    specs: list[KeySpec] | None, count: int, threads: int = 1
) -> list[tuple[str, int, bytes, bytes]]:
    """``count`` signatures per key and thread: ``(alias, pid, data, signature)``.

    With ``specs`` the keys are made here (a spawned child); without, the keys inherited from
    the parent are used (a forked child), which must open their own session in this process.
    """
    from concurrent.futures import ThreadPoolExecutor

    from kyso.keystore.pkcs11 import Pkcs11Key

    if specs is None:
        keys: list[Any] = list(INHERITED_KEYS)
    else:
        keys = [
            Pkcs11Key(alias, module, token, label, pin=lambda pin=pin: pin)
            for alias, module, token, label, pin in specs
        ]

    def work(thread: int) -> list[tuple[str, int, bytes, bytes]]:
        signed = []
        for n in range(count):
            for key in keys:
                data = f"{key.alias} {os.getpid()} {thread} {n}".encode()
                signed.append(
                    (key.alias, os.getpid(), data, key.sign(data, key.info.default_scheme))
                )
        return signed

    with ThreadPoolExecutor(threads) as pool:
        return [item for batch in pool.map(work, range(threads)) for item in batch]
