"""The README.md written beside a generated dev PKI: what each file is, and that it is DEV ONLY."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def readme(leaves: Sequence[Any], base: str, passphrase: str, marker: str, organization: str) -> str:
    """README.md of the generated directory: what each file is, and that it is DEV ONLY."""
    rows = "\n".join(f"| `{s.name}` | {s.common_name} | {s.purpose} |" for s in leaves)
    return f"""# kyso development PKI — DEV ONLY

**Every private key in this directory is published. Never use any of it in production.**
Key files are encrypted PKCS#8 PEM (and PKCS#12 for `dr-an`, `dr-binh`) under the public
passphrase `{passphrase}`; each `*.key.pem` starts with the line
`{marker}`. Every subject has `O={organization}`.

Regenerate with `kyso pki init-dev` (or `python -m kyso.certs.devpki OUT_DIR`): keys and
serial numbers change, file names and dates do not. Leaves are valid 2025-01-01 to
2055-12-31 unless said otherwise; the CAs from 2019-01-01. URLs point at `{base}/pki/`.

| file | what it is |
|---|---|
| `root-ca.cert.pem`, `root-ca.key.pem` | self-signed root CA (RSA 3072), the trust anchor |
| `intermediate-ca.cert.pem`, `intermediate-ca.key.pem` | issuing CA (RSA 3072, pathlen 0) |
| `chain.pem` | intermediate + root, for `openssl -untrusted` / `-CAfile` |
| `root-ca.crl`, `intermediate-ca.crl` | DER CRLs, thisUpdate 2025-06-02, nextUpdate 2055-12-31 |
| `revoked.json` | revoked leaves (issuer, serial, revocation_time, reason) for the OCSP responder |
| `<name>.cert.pem`, `<name>.key.pem` | leaf certificate and key, issued by the intermediate |

| name | subject CN | what it is for |
|---|---|---|
{rows}
"""
