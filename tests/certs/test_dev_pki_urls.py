"""The dev PKI's CRL and OCSP URLs and the port kyso serves on: kyso says when they differ,
and a dev PKI generated for the port is checked live by pdfsig."""

from __future__ import annotations

import requests
from serving import free_port, kyso_serve
from support import corpus_pdfs
from verifiers import make_nss_db, pdfsig

from kyso.certs.devpki import generate_dev_pki, published_base_url


def dev_his_key(data_dir) -> str:
    lines = (data_dir / "dev-api-keys.txt").read_text().splitlines()
    return next(line.split()[2] for line in lines if line.startswith("dev-his "))


def test_serving_on_another_port_says_what_external_validators_will_not_reach(tmp_path, pki):
    assert published_base_url(pki) == "http://127.0.0.1:8080"
    data = tmp_path / "var"
    data.mkdir()
    with kyso_serve(data) as (_url, _proc, log):
        output = log.read_text()
    assert "http://127.0.0.1:8080/pki" in output and "kyso pki init-dev --out" in output


def test_a_dev_pki_made_for_the_port_is_quiet_and_pdfsig_checks_revocation_live(tmp_path):
    port = free_port()
    pki = tmp_path / "pki"
    generate_dev_pki(pki, base_url=f"http://127.0.0.1:{port}")
    assert published_base_url(pki) == f"http://127.0.0.1:{port}"
    config = tmp_path / "kyso.toml"
    config.write_text(f'dev_pki = true\ndev_pki_path = "{pki}"\n', encoding="utf-8")
    data = tmp_path / "var"
    data.mkdir()
    pdf = next(iter(corpus_pdfs())).read_bytes()
    with kyso_serve(data, env={"KYSO_CONFIG": str(config)}, port=port) as (url, _proc, log):
        signed = requests.post(
            f"{url}/api/v1/sign/pdf?key=hospital-seal&level=B-B",
            data=pdf,
            headers={"Authorization": f"Bearer {dev_his_key(data)}", "Content-Type": "application/pdf"},
            timeout=60,
        )
        assert signed.status_code == 200, signed.text
        out = tmp_path / "signed.pdf"
        out.write_bytes(signed.content)
        (verdict,) = pdfsig(out, make_nss_db(tmp_path / "nss", pki / "root-ca.cert.pem"), ocsp=True)
        output = log.read_text()
    assert "not this server" not in output
    assert verdict.valid and verdict.trusted, verdict.text
