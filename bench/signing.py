"""Signing throughput: kyso's paths against the bare libraries, in the same run.

    python bench/signing.py [--seconds 3]

- PAdES B-B, RSA-2048 and P-256: kyso (`async_sign_pdf` with a key parsed once) against
  pyHanko's stock `SimpleSigner` (which re-checks the RSA key on every signature);
- PAdES B-T with the built-in TSA in-process;
- JWS B-B ES256 over a FHIR record: kyso's `sign_json` against a bare rfc8785 +
  cryptography loop;
- the whole HTTP path (`POST /api/v1/sign/pdf` B-B through Flask, audit entry included).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

from kyso.api import create_app  # noqa: E402
from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir  # noqa: E402
from kyso.config import load_config  # noqa: E402
from kyso.service import Kyso  # noqa: E402
from kyso.signer.jades import sign_json  # noqa: E402
from kyso.signer.pades import PdfSignOptions, async_sign_pdf  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
PDF = (CORPUS / "pdf/002-trivial-libre-office-writer/002-trivial-libre-office-writer.pdf").read_bytes()
RECORD = json.loads((CORPUS / "records/discharge-bundle.json").read_text(encoding="utf-8"))


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def stock_pyhanko(alias: str) -> Callable[[], bytes]:
    pki = dev_pki_dir()
    signer = signers.SimpleSigner.load(
        str(pki / f"{alias}.key.pem"), str(pki / f"{alias}.cert.pem"),
        ca_chain_files=(str(pki / "intermediate-ca.cert.pem"),), key_passphrase=DEV_PASSPHRASE,
    )
    meta = signers.PdfSignatureMetadata(field_name="Signature1", md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES)

    def run() -> bytes:
        from io import BytesIO

        out = BytesIO()
        signers.PdfSigner(meta, signer).sign_pdf(IncrementalPdfFileWriter(BytesIO(PDF)), output=out)
        return out.getvalue()

    return run


def bare_jws(record: object = RECORD) -> Callable[[], str]:
    """A bare JCS + JWS ES256 signature of ``record`` with the lab-seal key: rfc8785 and
    cryptography, nothing else."""
    priv = serialization.load_pem_private_key((dev_pki_dir() / "lab-seal.key.pem").read_bytes(), DEV_PASSPHRASE)
    assert isinstance(priv, ec.EllipticCurvePrivateKey)

    def run() -> str:
        payload = base64.urlsafe_b64encode(rfc8785.dumps(record)).rstrip(b"=")
        header = base64.urlsafe_b64encode(rfc8785.dumps({"alg": "ES256"})).rstrip(b"=")
        return base64.urlsafe_b64encode(priv.sign(header + b"." + payload, ec.ECDSA(hashes.SHA256()))).decode()

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    data_dir = Path(tempfile.mkdtemp())
    kyso = Kyso.open(load_config(env={"KYSO_DATA_DIR": str(data_dir)}))
    rows = []

    for alias in ("hospital-seal", "lab-seal"):
        key = kyso.keystore.get(alias)
        ours = rate(lambda key=key: asyncio.run(async_sign_pdf(PDF, key, PdfSignOptions(level="B-B"), None)), seconds)
        bare = rate(stock_pyhanko(alias), seconds)
        rows.append((f"PAdES B-B, {key.info.algorithm}", ours, f"pyHanko SimpleSigner {bare:.1f}/s", ours / bare))

    key = kyso.keystore.get("hospital-seal")
    bt = rate(lambda: asyncio.run(async_sign_pdf(PDF, key, PdfSignOptions(level="B-T"), kyso.timestamper)), seconds)
    rows.append(("PAdES B-T, RSA-2048, built-in TSA in-process", bt, "-", None))

    lab = kyso.keystore.get("lab-seal")
    ours = rate(lambda: sign_json(RECORD, lab, "B-B"), seconds)
    bare = rate(bare_jws(), seconds)
    rows.append(("JWS B-B ES256, FHIR Bundle (2 KB)", ours, f"rfc8785 + cryptography {bare:.0f}/s", ours / bare))

    api_key = kyso.add_client("bench", "bench", "his", ("hospital-seal",))
    client = create_app(kyso=kyso).test_client()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/pdf"}
    http = rate(lambda: client.post("/api/v1/sign/pdf?key=hospital-seal&level=B-B", data=PDF, headers=headers), seconds)
    rows.append(("HTTP POST /sign/pdf B-B RSA (Flask, SQLite audit entry)", http, "-", None))
    kyso.close()

    table = ["| operation | kyso | bare library, same run | ratio |", "|---|---|---|---|"]
    for name, ours, bare_text, ratio in rows:
        table.append(f"| {name} | {ours:.1f}/s | {bare_text} | {'' if ratio is None else f'{ratio:.2f}'} |")
    body = "One thread, " + f"{seconds:g} s per row.\n\n" + "\n".join(table) + (
        "\n\nThe stock SimpleSigner re-parses and checks the RSA key on every signature; kyso"
        " keeps the parsed key (keystore/software.py), which is where the RSA ratio comes from."
    )
    print(body)
    write_section("Signing", body)


if __name__ == "__main__":
    main()
