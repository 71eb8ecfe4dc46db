"""A client of the Cloud Signature Consortium API: the calls kyso needs to sign hashes.

CSC API v1.0.4 (what Viettel's and most providers' services expose) and the v2.0 names of
the same fields (``hashes``, ``hashAlgorithmOID``): ``credentials/list`` (a user's
credentials), ``credentials/info`` (the certificate chain, the key's algorithms, ``SCAL``,
``multisign``), ``credentials/authorize`` (the SAD; with the hashes when the credential pins
them, SCAL 2) and ``signatures/signHash`` (several hashes in one call).

Every call has a bounded connect and read timeout. Every failure (no answer, an HTTP error,
an answer that is not what the API describes) is :class:`RemoteSignerUnavailable` naming the
service and the method, never the bearer token, the client secret or the PIN.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from asn1crypto import algos, x509

from kyso.errors import RemoteSignerUnavailable
from kyso.formats import ecdsa_as_der
from kyso.keystore.base import Scheme

SHA256_OID = "2.16.840.1.101.3.4.2.1"
RSA_PKCS1_OID = "1.2.840.113549.1.1.1"  # needs hashAlgo
SHA256_RSA_OID = "1.2.840.113549.1.1.11"
RSA_PSS_OID = "1.2.840.113549.1.1.10"  # needs hashAlgo and signAlgoParams
SHA256_ECDSA_OID = "1.2.840.10045.4.3.2"
# RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt: what SPEC section 4 means by PSS.
PSS_PARAMS = algos.RSASSAPSSParams(
    {
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        "salt_length": 32,
    }
).dump()
CONNECT_TIMEOUT_MAX = 5.0
TOKEN_MARGIN_SECONDS = 30.0  # an OAuth2 token is renewed this long before it expires

SecretSource = Callable[[], str | None]


@dataclass(frozen=True)
class CscCredential:
    """What ``credentials/info`` says of a credential."""

    credential_id: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuers, as the service sent them
    algorithms: frozenset[str]  # signAlgo OIDs the key supports
    scal: str  # "1", or "2": authorize must carry the hashes
    multisign: int  # signatures one authorisation may cover (0: not said)
    enabled: bool


@dataclass(frozen=True)
class SignAlgo:
    """The ``signAlgo`` of a signHash call, and what goes with it."""

    oid: str
    needs_hash_algo: bool
    params: bytes | None = None


def sign_algo(credential: CscCredential, scheme: Scheme) -> SignAlgo:
    """The signAlgo for a SHA-256 ``scheme`` signature among those the credential offers."""
    offered = credential.algorithms
    if scheme == "pkcs1v15":
        if SHA256_RSA_OID in offered or not offered:
            return SignAlgo(SHA256_RSA_OID, False)
        if RSA_PKCS1_OID in offered:
            return SignAlgo(RSA_PKCS1_OID, True)
    elif scheme == "pss":
        if RSA_PSS_OID in offered or not offered:
            return SignAlgo(RSA_PSS_OID, True, PSS_PARAMS)
    elif scheme == "ecdsa":
        if SHA256_ECDSA_OID in offered or not offered:
            return SignAlgo(SHA256_ECDSA_OID, False)
    raise RemoteSignerUnavailable(
        f"credential {credential.credential_id!r} offers no {scheme} signature with SHA-256 "
        f"(its algorithms: {', '.join(sorted(offered))})"
    )


class BearerToken:
    """The ``Authorization`` of every call: a bearer token read from its source at each
    call (so that a rotated token file is picked up), or an OAuth2 client-credentials token
    fetched when needed and kept until shortly before it expires."""

    def __init__(
        self,
        token: SecretSource | None = None,
        client_id: str | None = None,
        client_secret: SecretSource | None = None,
        token_url: str | None = None,
    ) -> None:
        self._token = token
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_url = token_url
        self._cached: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def header(self, client: CscClient) -> dict[str, str]:
        if self._token is not None:
            value = self._token()
            return {"Authorization": f"Bearer {value}"} if value else {}
        if self._client_id is None or self._client_secret is None or self._token_url is None:
            return {}
        with self._lock:
            if self._cached is None or self._cached[1] < time.monotonic():
                self._cached = self._fetch(client)
            return {"Authorization": f"Bearer {self._cached[0]}"}

    def _fetch(self, client: CscClient) -> tuple[str, float]:
        assert self._client_secret is not None and self._token_url is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret(),
        }
        answer = client.request("oauth2/token", self._token_url, form=form)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise client.unavailable("oauth2/token", "the answer holds no access_token")
        lifetime = float(answer.get("expires_in") or 3600)
        return token, time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 1.0)


class CscClient:
    """The CSC API of one service, on behalf of ``owner`` (a key alias or a provider name)."""

    def __init__(
        self,
        owner: str,
        url: str,
        bearer: BearerToken,
        *,
        api_version: str | None = None,
        timeout: float = 10.0,
        pin: SecretSource | None = None,
    ) -> None:
        self.owner = owner
        self.url = url.rstrip("/")
        self.api_version = api_version or ("v2" if self.url.endswith("/v2") else "v1")
        if self.api_version not in ("v1", "v2"):
            raise ValueError(f"CSC api_version must be v1 or v2, not {self.api_version!r}")
        self.timeout = (min(timeout, CONNECT_TIMEOUT_MAX), timeout)
        self.host = urlsplit(self.url).netloc or self.url
        self._bearer = bearer
        self._pin = pin
        self._http = requests.Session()

    def __repr__(self) -> str:
        return f"CscClient(owner={self.owner!r}, url={self.url!r}, api={self.api_version})"

    # -- calls ---------------------------------------------------------------

    def list_credentials(self, user_id: str) -> list[str]:
        body: dict[str, Any] = {"userID": user_id, "maxResults": 20}
        answer = self.call("credentials/list", body)
        ids = answer.get("credentialIDs")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise self.unavailable("credentials/list", "the answer holds no credentialIDs list")
        return ids

    def credential(self, credential_id: str) -> CscCredential:
        body: dict[str, Any] = {
            "credentialID": credential_id,
            "certificates": "chain",
            "certInfo": False,
        }
        answer = self.call("credentials/info", body)
        try:
            certs = [
                x509.Certificate.load(base64.b64decode(c))
                for c in answer["cert"]["certificates"]
            ]
            for cert in certs:
                cert.not_valid_after  # noqa: B018 - parse now: asn1crypto parses lazily
            key = answer.get("key") or {}
            return CscCredential(
                credential_id=credential_id,
                certificate=certs[0],
                chain=tuple(certs[1:]),
                algorithms=frozenset(str(a) for a in key.get("algo") or ()),
                scal=str(answer.get("SCAL", "1")),
                multisign=int(answer.get("multisign") or 0),
                enabled=key.get("status", "enabled") == "enabled",
            )
        except (KeyError, IndexError, TypeError, ValueError):
            raise self.unavailable(
                "credentials/info", "the answer holds no usable certificate chain"
            ) from None

    def sign_digests(
        self,
        credential: CscCredential,
        digests: Sequence[bytes],
        scheme: Scheme,
        description: str | None = None,
    ) -> list[bytes]:
        """SHA-256 ``scheme`` signatures of ``digests``, in order: one authorisation and one
        signHash call for all of them, or for each ``multisign`` of them when the credential
        allows fewer. ECDSA values are returned DER-encoded."""
        algo = sign_algo(credential, scheme)
        batch = credential.multisign if credential.multisign > 0 else len(digests)
        signatures: list[bytes] = []
        for start in range(0, len(digests), batch):
            chunk = list(digests[start : start + batch])
            sad = self.authorize(credential, chunk, description)
            signatures.extend(self.sign_hash(credential.credential_id, sad, chunk, algo))
        if scheme == "ecdsa":
            size = (credential.certificate.public_key.bit_size + 7) // 8
            signatures = [ecdsa_as_der(s, size) for s in signatures]
        return signatures

    def authorize(
        self, credential: CscCredential, digests: Sequence[bytes], description: str | None
    ) -> str:
        """The SAD for ``digests``; the hashes are sent when the credential pins them."""
        body: dict[str, Any] = {
            "credentialID": credential.credential_id,
            "numSignatures": len(digests),
        }
        if credential.scal == "2":
            body[self._hashes_field] = [_b64(d) for d in digests]
            if self.api_version == "v2":
                body["hashAlgorithmOID"] = SHA256_OID
        if description:
            body["description"] = description[:500]
        pin = self._pin() if self._pin is not None else None
        if pin:
            body["PIN"] = pin
        sad = self.call("credentials/authorize", body).get("SAD")
        if not isinstance(sad, str) or not sad:
            raise self.unavailable("credentials/authorize", "the answer holds no SAD")
        return sad

    def sign_hash(
        self, credential_id: str, sad: str, digests: Sequence[bytes], algo: SignAlgo
    ) -> list[bytes]:
        body: dict[str, Any] = {
            "credentialID": credential_id,
            "SAD": sad,
            self._hashes_field: [_b64(d) for d in digests],
            "signAlgo": algo.oid,
        }
        if algo.needs_hash_algo:
            body["hashAlgo" if self.api_version == "v1" else "hashAlgorithmOID"] = SHA256_OID
        if algo.params is not None:
            body["signAlgoParams"] = _b64(algo.params)
        values = self.call("signatures/signHash", body).get("signatures")
        if not isinstance(values, list) or len(values) != len(digests):
            raise self.unavailable(
                "signatures/signHash", f"the answer does not hold {len(digests)} signature(s)"
            )
        try:
            return [base64.b64decode(v, validate=True) for v in values]
        except (TypeError, ValueError):
            raise self.unavailable("signatures/signHash", "a signature is not base64") from None

    @property
    def _hashes_field(self) -> str:
        return "hash" if self.api_version == "v1" else "hashes"

    # -- HTTP ----------------------------------------------------------------

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``<url>/<method>`` with the bearer token; the JSON answer."""
        headers = self._bearer.header(self)
        return self.request(method, f"{self.url}/{method}", json_body=body, headers=headers)

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            resp = self._http.post(
                url, json=json_body, data=form, headers=headers, timeout=self.timeout
            )
        except requests.Timeout:
            raise self.unavailable(method, f"no answer within {self.timeout[1]:g} s") from None
        except requests.RequestException as exc:
            raise self.unavailable(method, f"cannot connect ({type(exc).__name__})") from None
        if resp.status_code >= 400:
            raise self.unavailable(method, f"HTTP {resp.status_code}{_csc_error(resp)}")
        try:
            answer = resp.json()
        except ValueError:
            raise self.unavailable(method, "the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise self.unavailable(method, "the answer is not a JSON object")
        return answer

    def unavailable(self, method: str, why: str) -> RemoteSignerUnavailable:
        return RemoteSignerUnavailable(
            f"{self.owner}: the CSC service at {self.host} failed {method}: {why}; "
            "nothing was signed. Try again later, or ask the provider"
        )

    def close(self) -> None:
        self._http.close()


def _csc_error(resp: requests.Response) -> str:
    """``: <error> (<error_description>)`` of a CSC error answer, if it is one (short)."""
    try:
        answer = resp.json()
    except ValueError:
        return ""
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), str):
        return ""
    text = answer["error"]
    if isinstance(answer.get("error_description"), str):
        text += f" ({answer['error_description']})"
    return f": {text[:200]}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
