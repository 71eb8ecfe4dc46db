"""Key providers behind one interface, looked up by alias.

Keys are loaded once when the service starts (a software key is parsed then, a token
is opened lazily in each process on first use, so that forked workers each get their
own session).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from kyso.config import Config, KeyConfig
from kyso.errors import ConfigError, UnknownKey
from kyso.keystore.base import RSA_SCHEMES, KeyInfo, RsaScheme, SigningKey
from kyso.trust.policy import key_strength_problem

__all__ = ["Keystore", "KeyInfo", "SigningKey", "load_keystore", "load_one", "read_secret"]


def read_secret(
    alias: str,
    what: str,
    env_name: str | None,
    file_name: str | None,
    env: Mapping[str, str],
    owner: str | None = None,
) -> str | None:
    """Read a secret from the variable or file a key alias (or the ``owner`` named so in
    messages, such as a remote signing provider) names; never log its value."""
    owner = owner or f"key alias {alias!r}"
    if env_name:
        if env_name not in env:
            raise ConfigError(f"{owner}: {what} variable {env_name} is not set")
        return env[env_name]
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"{owner}: cannot read {what} file {file_name}: {exc.strerror}"
            ) from None
    return None


class Keystore:
    """The key aliases of this service."""

    def __init__(self, keys: Mapping[str, SigningKey]):
        self._keys = dict(keys)

    def get(self, alias: str) -> SigningKey:
        try:
            return self._keys[alias]
        except KeyError:
            raise UnknownKey(f"no key alias {alias!r} is configured") from None

    def __contains__(self, alias: object) -> bool:
        return alias in self._keys

    def aliases(self) -> list[str]:
        return sorted(self._keys)

    def close(self) -> None:
        for key in self._keys.values():
            key.close()


def load_one(kc: KeyConfig, env: Mapping[str, str]) -> SigningKey:
    """The key of one alias; ConfigError when it cannot be loaded or is too weak to sign."""
    key = _load(kc, env)
    _refuse_weak(kc, key)
    return key


def _load(kc: KeyConfig, env: Mapping[str, str]) -> SigningKey:
    chain = tuple(kc.chain_files)
    if kc.kind == "software":
        from kyso.certs.devpki import DEV_PASSPHRASE
        from kyso.keystore.software import load_software_key

        if not kc.key_file:
            raise ConfigError(f"key alias {kc.alias!r}: key_file is required for a software key")
        if kc.dev_passphrase:
            passphrase: bytes | None = DEV_PASSPHRASE
        else:
            secret = read_secret(kc.alias, "passphrase", kc.passphrase_env, kc.passphrase_file, env)
            passphrase = secret.encode("utf-8") if secret is not None else None
        return load_software_key(
            kc.alias, kc.key_file, passphrase, kc.cert_file, chain, _rsa_scheme(kc)
        )
    if kc.kind == "pkcs11":
        from kyso.keystore.pkcs11 import Pkcs11Key
        from kyso.keystore.software import load_certificates

        missing = [n for n in ("module", "token_label", "key_label") if not getattr(kc, n)]
        if missing:
            raise ConfigError(
                f"key alias {kc.alias!r}: {', '.join(missing)} required for a pkcs11 key"
            )
        assert kc.module and kc.token_label and kc.key_label  # checked just above
        if not (kc.pin_env or kc.pin_file):
            raise ConfigError(f"key alias {kc.alias!r}: pin_env or pin_file is required")

        def pin() -> str:
            value = read_secret(kc.alias, "PIN", kc.pin_env, kc.pin_file, env)
            assert value is not None
            return value

        assert kc.module and kc.token_label and kc.key_label  # checked above
        return Pkcs11Key(
            alias=kc.alias,
            module=kc.module,
            token_label=kc.token_label,
            key_label=kc.key_label,
            pin=pin,
            cert_file=kc.cert_file,
            chain=tuple(c for f in chain for c in load_certificates(f)),
            rsa_scheme=_rsa_scheme(kc),
        )
    if kc.kind == "csc":
        from kyso.keystore.csc import CscKey, csc_client

        if not kc.credential_id:
            raise ConfigError(f"key alias {kc.alias!r}: credential_id is required for a csc key")
        client = csc_client(f"key alias {kc.alias!r}", kc, env)
        return CscKey(kc.alias, client, kc.credential_id, _rsa_scheme(kc))
    raise ConfigError(
        f"key alias {kc.alias!r}: unknown kind {kc.kind!r} (software, pkcs11 or csc)"
    )


def _rsa_scheme(kc: KeyConfig) -> RsaScheme:
    if kc.rsa_scheme not in RSA_SCHEMES:
        raise ConfigError(f"key alias {kc.alias!r}: rsa_scheme must be 'pss' or 'pkcs1v15'")
    return cast(RsaScheme, kc.rsa_scheme)


def _refuse_weak(kc: KeyConfig, key: SigningKey) -> None:
    """Refuse at start-up a key too weak to sign (Circular 15/2025/TT-BKHCN: RSA of at least
    2048 bits, EC of at least 256). A token key whose certificate is read from the token, and
    a key held by a CSC service, are refused when they first sign (the token is opened, the
    service asked, only then: kyso starts while a service is down)."""
    if kc.kind == "csc":
        return
    if kc.kind == "pkcs11":
        if not kc.cert_file:
            return
        from kyso.keystore.software import load_certificates

        certificate = load_certificates(kc.cert_file)[0]  # the token stays closed until used
    else:
        certificate = key.info.certificate
    problem = key_strength_problem(certificate)
    if problem is not None:
        raise ConfigError(
            f"key alias {kc.alias!r} is refused: its certificate has {problem}. Weaker keys may "
            "not sign (Circular 15/2025/TT-BKHCN); replace the key and certificate, or remove "
            "the alias"
        )


def load_keystore(config: Config, env: Mapping[str, str] | None = None) -> Keystore:
    env = os.environ if env is None else env
    return Keystore({kc.alias: load_one(kc, env) for kc in config.keys})
