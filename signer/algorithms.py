"""The signature algorithms a clinician's token (or a remote signer) is asked to use, and
the check of what it returns: pyHanko's ExternalSigner does not check the signature it is
given, so :func:`check_signature` must pass before anything is finished."""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import algos, x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kyso.errors import InvalidRequest, InvalidSignature
from kyso.formats import ecdsa_as_der
from kyso.keystore.base import Scheme


@dataclass(frozen=True)
class Algorithm:
    """A signature algorithm a clinician's token is asked to use, by its session name."""

    name: str
    scheme: Scheme  # the keystore's name, as kyso.keystore.pkcs11_tokens.sign_many takes it
    jws_alg: str


PKCS1V15 = Algorithm("RSASSA-PKCS1-v1_5-SHA256", "pkcs1v15", "RS256")
PSS = Algorithm("RSASSA-PSS-SHA256", "pss", "PS256")  # MGF1-SHA-256, salt length 32
ECDSA = Algorithm("ECDSA-SHA256", "ecdsa", "ES256")  # raw r||s or DER, P-256
ALGORITHMS = {a.name: a for a in (PKCS1V15, PSS, ECDSA)}
BY_SCHEME = {a.scheme: a for a in (PKCS1V15, PSS, ECDSA)}


def algorithm_for(certificate: x509.Certificate, rsa_scheme: str = "pss") -> Algorithm:
    """The algorithm for the certificate's key: RSA with ``rsa_scheme``, or ECDSA on P-256."""
    public_key = certificate.public_key
    if public_key.algorithm == "rsa":
        if rsa_scheme not in ("pkcs1v15", "pss"):
            raise InvalidRequest(f"rsa_scheme must be 'pkcs1v15' or 'pss', not {rsa_scheme!r}")
        return PKCS1V15 if rsa_scheme == "pkcs1v15" else PSS
    if public_key.algorithm == "ec" and public_key.curve[1] == "secp256r1":
        return ECDSA
    raise InvalidRequest("the signer's key must be RSA or ECDSA P-256")


def cms_mechanism(algorithm: Algorithm) -> algos.SignedDigestAlgorithm:
    if algorithm is PSS:
        params = algos.RSASSAPSSParams(
            {
                "hash_algorithm": {"algorithm": "sha256"},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
                "salt_length": 32,
            }
        )
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})
    name = "sha256_ecdsa" if algorithm is ECDSA else "sha256_rsa"
    return algos.SignedDigestAlgorithm({"algorithm": name})


def check_signature(
    certificate: x509.Certificate, data: bytes, signature: bytes, algorithm: Algorithm
) -> bytes:
    """Verify ``signature`` over ``data`` with the certificate's public key; return it as CMS
    carries it (ECDSA as DER, whether it came raw ``r||s`` or DER). Raises InvalidSignature."""
    public_key = serialization.load_der_public_key(certificate.public_key.dump())
    try:
        if algorithm is ECDSA:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            der = ecdsa_as_der(signature, (public_key.curve.key_size + 7) // 8)
            public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return der
        assert isinstance(public_key, rsa.RSAPublicKey)
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
        if algorithm is PSS:
            pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public_key.verify(signature, data, pad, hashes.SHA256())
        return signature
    except (CryptoInvalidSignature, ValueError):
        raise InvalidSignature(
            f"the signature is not a valid {algorithm.name} signature by the session's certificate"
        ) from None
