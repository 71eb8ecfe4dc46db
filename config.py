"""Configuration: one typed object, loaded once from TOML and ``KYSO_*`` variables.

The embedded default (no file, no variables) is a complete dev service: SQLite under
``./var``, the dev PKI shipped in ``certs/dev``, the built-in TSA. Secrets (PINs,
passphrases) are never values in this object: a key names *where* its secret is
(``passphrase_env``/``passphrase_file``, ``pin_env``/``pin_file``) and the keystore reads
it when it needs it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from kyso.errors import ConfigError

DEV_KEY_ALIASES = ("hospital-seal", "lab-seal", "dr-revoked", "dr-an", "dr-binh", "dr-expired", "dr-future")
LOG_KEY_ALIAS = "audit-log"
# What a key alias may be (kyso.api.fields holds every limit on names).
KEY_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TRUST_PROFILES = ("vn",)  # built-in sets of trust anchors (kyso.trust.profiles)


@dataclass(frozen=True)
class KeyConfig:
    alias: str
    kind: str = "software"
    # software
    key_file: str | None = None
    cert_file: str | None = None
    chain_files: tuple[str, ...] = ()
    passphrase_env: str | None = None
    passphrase_file: str | None = None
    # pkcs11
    module: str | None = None
    token_label: str | None = None
    key_label: str | None = None
    pin_env: str | None = None
    pin_file: str | None = None
    # csc (a key held by a Cloud Signature Consortium API service; pin_* for its PIN, if any)
    url: str | None = None  # the API base, e.g. https://csc.example/csc/v1
    credential_id: str | None = None
    token_env: str | None = None  # a bearer token, or token_file,
    token_file: str | None = None
    client_id: str | None = None  # or OAuth2 client credentials
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    oauth_token_url: str | None = None  # default: <url>/oauth2/token
    api_version: str | None = None  # "v1" or "v2"; default: the url's last segment
    timeout_seconds: float = 10.0  # each HTTP call (connect: at most 5 s)
    # both: how an RSA key signs documents (PAdES, JWS): RSASSA-PSS as Circular
    # 15/2025/TT-BKHCN asks, or "pkcs1v15" for a receiver that still needs PKCS#1 v1.5
    rsa_scheme: str = "pss"
    dev_passphrase: bool = False  # the published dev PKI passphrase, embedded default only


@dataclass(frozen=True)
class RemoteSigningConfig:
    """A provider of clinicians' remote signatures (``[[remote_signing]]``): a signing session
    may name its signer by ``provider`` and ``user_id`` instead of a certificate chain."""

    name: str
    kind: str  # "neac" or "csc"
    url: str
    # neac: the service provider's account at the CA (sent in every request body)
    sp_id: str | None = None
    sp_secret_env: str | None = None
    sp_secret_file: str | None = None
    # csc: as a csc key alias; credential_from = "list" (credentials/list with the user id)
    # or "user_id" (the user id is the credential id)
    token_env: str | None = None
    token_file: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    oauth_token_url: str | None = None
    api_version: str | None = None
    credential_from: str = "list"
    # both
    timeout_seconds: float = 10.0  # each HTTP call (connect: at most 5 s)
    poll_seconds: float = 2.0  # first wait before asking for a transaction's status
    poll_max_seconds: float = 30.0  # the longest wait between two questions (back-off)


@dataclass(frozen=True)
class TsaConfig:
    urls: tuple[str, ...] = ()
    builtin: bool = True
    public: bool = True  # serve POST /tsa without authentication
    key: str = "tsa"  # key alias of the built-in TSA
    policy_oid: str = "2.25.300738347016499735365908708690126511858.1.1"  # kyso.signer.timestamp.authority.DEFAULT_POLICY_OID
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class TrustConfig:
    roots: tuple[str, ...] = ()
    profile: str | None = None  # "vn": add the Vietnam National Root CA shipped with kyso
    revocation: str = "soft-fail"  # or "require"
    # How long a signer certificate's revocation status is trusted before it is checked again.
    revocation_cache_seconds: float = 300.0
    # Fetching CRLs and OCSP responses of chains that reached a root (kyso.trust.fetching).
    fetch: bool = True
    fetch_allow_hosts: tuple[str, ...] = ()  # empty: the hosts the certificates name
    fetch_allow_private: bool = False  # loopback, private, link-local addresses
    fetch_timeout_seconds: float = 5.0  # each fetch
    fetch_budget_seconds: float = 15.0  # all fetches of one request
    fetch_max_requests: int = 16  # fetches of one request
    fetch_max_bytes: int = 8 * 1024 * 1024  # one answer


@dataclass(frozen=True)
class AuditConfig:
    checkpoint_every: int = 1000
    checkpoint_seconds: int = 300
    on_demand_seconds: int = 10  # GET /audit/checkpoint makes at most one checkpoint per this
    log_key: str = LOG_KEY_ALIAS
    origin: str = "kyso.invalid/audit"


@dataclass(frozen=True)
class LimitsConfig:
    client_per_minute: int = 0  # calls a minute per API client; 0: no limit
    public_per_minute: int = 60  # per remote address: verification page, failed API keys
    tsa_per_minute: int = 0  # per remote address on POST /tsa (other kyso hosts may use it)
    # What one PDF may cost (kyso.signer.bounds): over a cap it is refused, 400 or 413.
    max_pdf_objects: int = 200_000
    max_inflated_bytes: int = 256 * 1024 * 1024  # decoded stream bytes, per document
    max_signature_fields: int = 1_000
    max_signatures: int = 100  # filled signature fields, document timestamps included
    repair_memory_bytes: int = 1024 * 1024 * 1024  # the rebuild (repair=true) runs apart, bounded
    repair_seconds: int = 30


@dataclass(frozen=True)
class MetricsConfig:
    """Who may read /metrics (kyso.api.headers.MetricsGuard); everyone when both are empty."""

    allow: tuple[str, ...] = ()  # addresses or networks, e.g. ["127.0.0.1", "10.20.0.0/16"]
    token_env: str | None = None  # a variable holding the bearer token scrapers present
    token_file: str | None = None  # or a file holding it


@dataclass(frozen=True)
class ServerConfig:
    """``kyso serve``'s front (kyso.cli.front): how long a client may take, and whom to
    believe about a client's address."""

    header_timeout_seconds: float = 10.0  # the request line and headers, from their first byte
    read_timeout_seconds: float = 30.0  # the longest pause while a body is sent, or an answer read
    keepalive_seconds: float = 5.0  # an idle connection between requests
    max_connections: int = 1000  # open client connections; more wait in the listen queue
    max_header_bytes: int = 16384
    upstream_timeout_seconds: float = 300.0  # the longest a worker may take to answer
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For names the client


@dataclass(frozen=True)
class RecordsConfig:
    # Clients that may add signatures to each other's records (kyso.audit.ownership):
    # groups = [["his-main", "archive"], ...]. Otherwise a record is its first signer's.
    groups: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("var")
    database_url: str | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    idempotency_hours: float = 24.0
    session_minutes: float = 10.0
    verify_page_public: bool = True
    dev_pki: bool = True  # use (and serve revocation data for) the shipped dev PKI
    dev_pki_path: str | None = None  # a dev PKI directory other than the shipped one
    stamp_font: str | None = None  # TrueType font of visible stamps (Vietnamese glyphs needed)
    keys: tuple[KeyConfig, ...] = ()
    remote_signing: tuple[RemoteSigningConfig, ...] = ()
    tsa: TsaConfig = field(default_factory=TsaConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    records: RecordsConfig = field(default_factory=RecordsConfig)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kyso.sqlite3').resolve()}"

    def key(self, alias: str) -> KeyConfig | None:
        return next((k for k in self.keys if k.alias == alias), None)

    @property
    def pki_dir(self) -> Path:
        """The dev PKI directory: ``dev_pki_path``, or the one shipped in the package."""
        if self.dev_pki_path:
            return Path(self.dev_pki_path)
        from kyso.certs.devpki import dev_pki_dir

        return dev_pki_dir()


def _dev_keys(pki_dir: Path) -> tuple[KeyConfig, ...]:
    chain = (str(pki_dir / "intermediate-ca.cert.pem"), str(pki_dir / "root-ca.cert.pem"))
    return tuple(
        KeyConfig(
            alias=alias,
            key_file=str(pki_dir / f"{alias}.key.pem"),
            cert_file=str(pki_dir / f"{alias}.cert.pem"),
            chain_files=chain,
            dev_passphrase=True,
        )
        for alias in (*DEV_KEY_ALIASES, LOG_KEY_ALIAS, "tsa")
    )


def _build(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _key_config(raw: Mapping[str, Any], where: str) -> KeyConfig:
    if "jws_alg" in raw:
        raise ConfigError(
            f"{where}: jws_alg is replaced by rsa_scheme (\"pss\", the default, signs PS256; "
            "\"pkcs1v15\" signs RS256)"
        )
    key: KeyConfig = _build(KeyConfig, raw, where)
    if key.rsa_scheme not in ("pss", "pkcs1v15"):
        raise ConfigError(f"{where}: rsa_scheme must be \"pss\" or \"pkcs1v15\", not {key.rsa_scheme!r}")
    return key


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the configuration: the TOML file named by ``path`` or ``KYSO_CONFIG``, then
    ``KYSO_DATA_DIR``, ``KYSO_DATABASE_URL`` (or ``KYSO_DATABASE_URL_FILE``) and ``KYSO_MAX_BODY_BYTES`` on top, then the
    embedded default for whatever is still missing."""
    env = os.environ if env is None else env
    path = path or env.get("KYSO_CONFIG")
    raw: dict[str, Any] = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path}: {exc}") from None

    sections = {
        "tsa": _build(TsaConfig, raw.pop("tsa", {}), "[tsa]"),
        "trust": _build(TrustConfig, raw.pop("trust", {}), "[trust]"),
        "audit": _build(AuditConfig, raw.pop("audit", {}), "[audit]"),
        "limits": _build(LimitsConfig, raw.pop("limits", {}), "[limits]"),
        "metrics": _build(MetricsConfig, raw.pop("metrics", {}), "[metrics]"),
        "server": _build(ServerConfig, raw.pop("server", {}), "[server]"),
        "records": _build(RecordsConfig, raw.pop("records", {}), "[records]"),
    }
    groups = sections["records"].groups
    if not all(isinstance(g, list | tuple) and all(isinstance(n, str) for n in g) for g in groups):
        raise ConfigError("[records] groups must be a list of lists of client names")
    profile = sections["trust"].profile
    if profile is not None and profile not in TRUST_PROFILES:
        raise ConfigError(f"[trust] profile must be one of {', '.join(TRUST_PROFILES)}, not {profile!r}")
    keys = tuple(_key_config(k, f"[[keys]] #{i + 1}") for i, k in enumerate(raw.pop("keys", [])))
    for number, key in enumerate(keys, 1):
        if not isinstance(key.alias, str) or not KEY_ALIAS.fullmatch(key.alias):
            raise ConfigError(
                f"[[keys]] #{number}: alias {key.alias!r} must be 1 to 64 ASCII letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
    sections["remote_signing"] = tuple(
        _build(RemoteSigningConfig, p, f"[[remote_signing]] #{i + 1}")
        for i, p in enumerate(raw.pop("remote_signing", []))
    )
    if "KYSO_DATA_DIR" in env:
        raw["data_dir"] = env["KYSO_DATA_DIR"]
    if "KYSO_DATABASE_URL" in env:
        raw["database_url"] = env["KYSO_DATABASE_URL"]
    elif "KYSO_DATABASE_URL_FILE" in env:  # the URL holds the database password: a secret
        try:
            raw["database_url"] = Path(env["KYSO_DATABASE_URL_FILE"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read KYSO_DATABASE_URL_FILE: {exc.strerror}") from None
    if "KYSO_MAX_BODY_BYTES" in env:
        raw["max_body_bytes"] = env["KYSO_MAX_BODY_BYTES"]
    if "data_dir" in raw:
        raw["data_dir"] = Path(raw["data_dir"])
    if "max_body_bytes" in raw:
        try:
            raw["max_body_bytes"] = int(raw["max_body_bytes"])
        except ValueError:
            raise ConfigError("max_body_bytes must be an integer") from None
    # A configuration file describes a production service: the dev PKI only where asked.
    raw.setdefault("dev_pki", not path)
    config: Config = _build(Config, raw, "configuration")
    if config.dev_pki:
        pki = config.pki_dir
        configured = {k.alias for k in keys}
        keys = keys + tuple(k for k in _dev_keys(pki) if k.alias not in configured)
        trust = sections["trust"]
        if not trust.roots:
            sections["trust"] = replace(trust, roots=(str(pki / "root-ca.cert.pem"),))
    return Config(**{**{f.name: getattr(config, f.name) for f in fields(Config)}, **sections, "keys": keys})
