"""The bridge from a keystore key to pyHanko's CMS signer."""

from __future__ import annotations

import asyncio

from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from kyso.keystore.base import SigningKey
from kyso.signer.algorithms import BY_SCHEME, cms_mechanism

# Upper bounds of a signature value, for size estimation before the real signature.
_EC_DER_MAX = {256: 72, 384: 104, 521: 139}


class KeystoreSigner(Signer):
    """A pyHanko :class:`Signer` whose raw signatures come from a :class:`SigningKey`
    (software or PKCS#11); the key is never re-parsed per signature. An RSA key signs with
    RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32) unless its alias keeps PKCS#1 v1.5."""

    def __init__(self, key: SigningKey, embed_roots: bool = True):
        info = key.info
        super().__init__(
            signing_cert=info.certificate,
            # pyHanko adds the signing certificate itself; listing it twice makes NSS reject the CMS.
            cert_registry=SimpleCertificateStore.from_certs(list(info.chain)),
            signature_mechanism=cms_mechanism(BY_SCHEME[info.default_scheme]),
            embed_roots=embed_roots,
        )
        self._key = key

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if digest_algorithm != "sha256":
            raise ValueError(f"only SHA-256 is supported, not {digest_algorithm}")
        info = self._key.info
        if dry_run:
            pub = info.certificate.public_key
            if info.key_type == "rsa":
                return bytes((pub.bit_size + 7) // 8)
            return bytes(_EC_DER_MAX.get(pub.bit_size, 139))
        if info.kind == "software":
            # A key in memory signs in well under a millisecond: a thread (a new one for
            # each event loop) would cost more than it spares the loop.
            return self._key.sign(data, info.default_scheme)
        # Token and remote calls block; keep the event loop free meanwhile.
        return await asyncio.to_thread(self._key.sign, data, info.default_scheme)
