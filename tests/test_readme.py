"""The README's shell blocks, copied as they are written, against a real server.

Every fenced ``sh``/``bash``/``console``/``shell`` block of README.md is either run here
(:data:`RUN`) or named in :data:`NOT_RUN` with the reason; a new block that is in neither
fails :func:`test_every_shell_block_is_run_here_or_says_why_not`. Blocks are known by a
command distinctive to them, not by their place in the file.

The blocks run with ``bash -euo pipefail`` in a folder laid out like the checkout (``.venv``
is the test's virtual environment, ``./var`` the data directory of one shared ``kyso serve``)
and with a ``PATH`` that does not hold ``.venv/bin``, so a bare ``kyso`` fails as it would on a
fresh machine. Placeholders are filled in one of two ways only:

- a file the README names but cannot make (a PDF to sign, the dev CA's certificates, a
  checkpoint the auditor kept under a dated name) is put in place under that name first;
- text is replaced only for the server's address (``http://127.0.0.1:8080``,
  ``https://kyso.example``), a port (a block's own ``kyso serve`` gets a free one), the
  database URL (a throw-away PostgreSQL server instead of db.example), the PKCS#11 module
  (SoftHSM's instead of OpenSC's: no USB token here), absolute folders (``/backup``, ``/tmp``)
  moved into the test's folder, the audit seqs and tree sizes of the proof examples (the
  test's log is shorter), and the horizon of ``records due`` (after the dev certificates' end).

Secrets the README says to put in a variable are put there: the token's PIN
(``KYSO_TOKEN_PIN``). The remote-signing provider the phone block names is a loopback
gateway (tests/neac_server.py) that the shared server is configured with.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import softhsm
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from neac_server import SP_ID, SP_SECRET, NeacGateway
from pyhanko.pdf_utils.reader import PdfFileReader
from remote_support import gateway
from serving import free_port, kyso_serve, wait_until_up
from support import CORPUS

from kyso.certs.devpki import DEV_PASSPHRASE
from kyso.cli import main
from kyso.config import load_config
from kyso.errors import ConfigError

__all__ = ["gateway"]  # a fixture: the loopback remote-signing gateway

CHECKOUT = Path(__file__).resolve().parents[1]
README = (CHECKOUT / "README.md").read_text(encoding="utf-8")
VENV_BIN = Path(sys.executable).parent
DEV = CHECKOUT / "certs" / "dev"
ADDRESS = "http://127.0.0.1:8080"
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
TOKEN_PIN = "clinician-pin-2718"

# Blocks run by a test of this module: a command found in the block -> the test.
RUN = {
    "/api/v1/sign/pdf": "test_the_first_start_commands_work_as_written",
    "kyso pki init-dev": "test_a_dev_pki_for_another_port_is_served_as_written",
    "profile=xades": "test_the_xml_commands_sign_and_verify_as_written",
    "xmlsec1 --verify": "test_the_xml_commands_sign_and_verify_as_written",
    "kyso clients add his-main": "test_the_client_commands_work_as_written",
    "records due": "test_the_records_due_commands_work_as_written",
    "kyso session sign": "test_the_clinician_commands_work_as_written",
    "kyso token sign-session": "test_the_clinician_commands_work_as_written",
    '"signer": {"provider"': "test_the_phone_commands_start_and_poll_as_written",
    "audit/checkpoint": "test_the_auditor_commands_work_as_written",
    "audit/export": "test_the_auditor_commands_work_as_written",
    "kyso audit verify audit.jsonl": "test_the_auditor_commands_work_as_written",
    "kyso audit verify-entry": "test_the_auditor_commands_work_as_written",
    "kyso audit verify-consistency": "test_the_auditor_commands_work_as_written",
    "export KYSO_DATABASE_URL=postgresql": "test_the_postgresql_commands_upgrade_and_serve_as_written",
    "kyso db backup": "test_the_backup_commands_work_as_written",
    "cp /backup/": "test_the_backup_commands_work_as_written",
}

# Blocks not run here, and why.
NOT_RUN = {
    "sudo ./scripts/run": "the setup commands themselves: CI runs scripts/test on a fresh machine "
    "(.ci/run), and every block here runs in the environment it made",
}

SHELL = ("sh", "bash", "console", "shell")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int
    text: str


def fenced_blocks(langs: tuple[str, ...]) -> list[Block]:
    """Fenced blocks of the README in those languages, indented ones (in a list item) dedented."""
    found = []
    for m in re.finditer(r"^([ \t]*)```(\w+)[ \t]*\n(.*?)^\1```", README, re.S | re.M):
        if m.group(2) in langs:
            found.append(Block(m.group(2), README.count("\n", 0, m.start()) + 1, textwrap.dedent(m.group(3))))
    return found


def block(key: str) -> str:
    (only,) = [b.text for b in fenced_blocks(SHELL) if key in b.text]
    return only


def test_every_shell_block_is_run_here_or_says_why_not() -> None:
    blocks = fenced_blocks(SHELL)
    assert len(blocks) >= 13
    keys = {**RUN, **NOT_RUN}
    for b in blocks:
        matched = [k for k in keys if k in b.text]
        assert matched, f"README.md line {b.line}: a shell block that no test runs and NOT_RUN does not name"
        assert len(matched) == 1, f"README.md line {b.line}: one block, several keys {matched}"
    for key in keys:
        hits = [b.line for b in blocks if key in b.text]
        assert len(hits) == 1, f"{key!r} must name exactly one block, found at lines {hits}"
    names = {n for n, v in globals().items() if n.startswith("test_") and callable(v)}
    assert set(RUN.values()) <= names


def test_every_variable_a_shell_block_uses_is_defined_in_it() -> None:
    """``$NAME`` is set in the block (``NAME=``, ``export NAME=``) or is one of the
    shell's own; the README never relies on a variable set elsewhere."""
    own = {"PATH", "PWD", "HOME"}
    for b in fenced_blocks(SHELL):
        text = re.sub(r"(^|\s)#.*", "", b.text)  # comments
        text = re.sub(r"'[^']*'", "''", text)  # awk's $3 and jq's $chain are not the shell's
        used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
        defined = set(re.findall(r"(?:^|[\s;(])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", b.text, re.M))
        assert used <= defined | own, f"README.md line {b.line}: {sorted(used - defined - own)} not defined"


def test_every_curl_of_the_readme_makes_a_refusal_an_error() -> None:
    """Without --fail-with-body a 4xx is exit 0 and its problem lands in the file meant for the
    answer (a checkpoint, an export, a signed record)."""
    for b in fenced_blocks(SHELL):
        for call in re.findall(r"\bcurl\b[^\n]*", b.text):
            assert "--fail-with-body" in call, f"README.md line {b.line}: {call}"


def test_every_configuration_example_is_read_as_kyso_config_check_reads_it(tmp_path: Path) -> None:
    """Each ``toml`` block, alone as a configuration file, passes the first step of ``kyso config
    check``: the file parses and every section and setting is one kyso knows, of the right type.
    (The next steps open the keys, databases and TSAs it names, which do not exist here.)"""
    blocks = fenced_blocks(("toml",))
    assert len(blocks) >= 7
    for b in blocks:
        path = tmp_path / f"line-{b.line}.toml"
        path.write_text(b.text, encoding="utf-8")
        try:
            load_config(path, env={})
        except ConfigError as exc:
            raise AssertionError(f"README.md line {b.line}: {exc}") from None



def test_the_configuration_examples_of_one_section_pass_kyso_config_check(tmp_path: Path) -> None:
    """The examples that name no key, database or service of their own, together, on the dev
    PKI: the CA intermediates' folder is filled with the dev intermediate."""
    examples = [b.text for b in fenced_blocks(("toml",)) if re.match(r"\[(metrics|server|trust)\]\n", b.text)]
    assert len(examples) == 3
    folder = tmp_path / "vn-intermediates"
    folder.mkdir()
    shutil.copy(DEV / "intermediate-ca.cert.pem", folder / "intermediate-ca.pem")
    config = tmp_path / "kyso.toml"
    config.write_text("dev_pki = true\n\n" + "\n".join(examples).replace("/etc/kyso/vn-intermediates", str(folder)))
    env = {**Site(tmp_path, "").env(), "KYSO_CONFIG": str(config), "KYSO_DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run([str(VENV_BIN / "kyso"), "config", "check"], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr



def test_the_national_root_s_fingerprint_is_what_the_readme_s_own_command_prints() -> None:
    """"Check it yourself: `openssl x509 … -fingerprint -sha256`", run from the checkout as
    written, prints the fingerprint of the README's table."""
    command = " ".join(re.search(r"Check it yourself: `(openssl x509[^`]*)`", README)[1].split())
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=CHECKOUT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    printed = done.stdout.strip().split("=", 1)[1]
    (row,) = [line for line in README.splitlines() if line.startswith("| `vietnam-national-root-ca-sha256-2014.pem`")]
    assert f"`{printed}`" in row, (printed, row)



def cli_commands(cmd: click.Command = main, path: str = "kyso") -> Iterator[str]:
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from cli_commands(sub, f"{path} {name}")
    else:
        yield path


def test_the_command_line_section_names_every_command_and_each_has_help() -> None:
    section = README[README.index("## Command line") : README.index("## Development")]
    named = set()
    for span in re.findall(r"`(kyso [^`]*)`", " ".join(section.split())):
        words = list(itertools.takewhile(lambda w: re.fullmatch(r"[a-z][a-z|-]*", w), span.split()[1:]))
        named |= {" ".join(("kyso", *choice)) for choice in itertools.product(*(w.split("|") for w in words))}
    assert named == set(cli_commands())
    for command in sorted(named):
        done = CliRunner().invoke(main, [*command.split()[1:], "--help"])
        assert done.exit_code == 0 and done.output.startswith("Usage: "), (command, done.output)


# --- the shared site: a folder laid out like the checkout, one server ---------------------


@dataclass
class Site:
    root: Path
    url: str

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a fresh shell: no KYSO_ variables, no .venv/bin on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KYSO_")}
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != VENV_BIN)
        return {**env, **extra}

    def run(self, key: str, replace: dict[str, str] | None = None, **env: str) -> subprocess.CompletedProcess:
        script = block(key)
        for old in replace or {}:
            assert old in script, (key, old)
        replace = {ADDRESS: self.url, "https://kyso.example": self.url, **(replace or {})}
        script = re.sub("|".join(map(re.escape, replace)), lambda m: replace[m[0]], script)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.root, capture_output=True, text=True, timeout=300, env=self.env(**env),
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, f"{key}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def put(self, name: str, source: Path) -> None:
        shutil.copy(source, self.root / name)


def checkout_like(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / ".venv").symlink_to(VENV_BIN.parent)
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, gateway: NeacGateway) -> Iterator[Site]:
    """One server for every block. Its configuration is what none means (dev_pki = true) plus
    the README's phone provider, smartca, at a loopback gateway that follows the NEAC contract;
    the blocks do not see it (their kyso commands run on the embedded default)."""
    root = checkout_like(tmp_path_factory.mktemp("readme") / "kyso")
    (root / "var").mkdir()
    config = root.parent / "server.toml"
    config.write_text(
        f'dev_pki = true\n\n[[remote_signing]]\nname = "smartca"\nkind = "neac"\nurl = "{gateway.url}"\n'
        f'sp_id = "{SP_ID}"\nsp_secret_env = "KYSO_SMARTCA_SECRET"\npoll_seconds = 0.2\npoll_max_seconds = 0.5\n'
    )
    env = {"KYSO_CONFIG": str(config), "KYSO_SMARTCA_SECRET": SP_SECRET}
    with kyso_serve(root / "var", "--workers", "2", env=env) as (url, _proc, _log):
        yield Site(root, url)


@pytest.fixture(scope="module")
def first_start(site: Site) -> subprocess.CompletedProcess:
    """The first-start block, run once: the signed PDF and the record the other blocks use."""
    site.put("giay-ra-vien.pdf", CORPUS / "pdf" / "001-trivial" / "minimal-document.pdf")
    site.put("bundle.json", CORPUS / "records" / "discharge-bundle.json")
    done = site.run("/api/v1/sign/pdf")
    shutil.copy(site.root / "headers.txt", site.root / "first-start-headers.txt")  # the XML block writes it too
    return done


def test_the_first_start_commands_work_as_written(site: Site, first_start: subprocess.CompletedProcess) -> None:
    assert (site.root / "signed.pdf").read_bytes().startswith(b"%PDF-")
    headers = (site.root / "first-start-headers.txt").read_text()
    assert "Kyso-Audit-Seq" in headers and "Kyso-Document-SHA256" in headers
    answers = json_answers(first_start.stdout)
    assert len(answers) == 4  # sign/json, the record, the list, the report
    record, report = answers[1], answers[3]
    assert [s["key"] for s in record["signatures"]] == ["hospital-seal"]
    assert report["indication"] == "TOTAL_PASSED", report
    with (site.root / "signed.pdf").open("rb") as signed:
        (signature,) = PdfFileReader(signed).embedded_signatures
        assert signature.sig_object["/Reason"] == "Giấy ra viện"  # sent and kept unmangled


@contextmanager
def serving_block(root: Path, script: str, port: int) -> Iterator[str]:
    """Run a block that ends in ``kyso serve`` (in its own folder); yield the server's URL once
    it answers, and stop the block's processes at the end."""
    with open(root.parent / f"block-{port}.log", "wb") as log:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=root, env=Site(root, "").env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_up(url, proc, timeout=120)
            except (RuntimeError, TimeoutError):
                raise AssertionError((root.parent / f"block-{port}.log").read_text()[-3000:]) from None
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_a_dev_pki_for_another_port_is_served_as_written(tmp_path: Path) -> None:
    root, port = checkout_like(tmp_path / "kyso"), free_port()
    with serving_block(root, block("kyso pki init-dev").replace("9090", str(port)), port) as url:
        with urllib.request.urlopen(url + "/pki/intermediate-ca.cer", timeout=10) as r:
            served = x509.load_der_x509_certificate(r.read())
    made = x509.load_pem_x509_certificate((root / "var" / "pki" / "intermediate-ca.cert.pem").read_bytes())
    assert served == made  # the new PKI, not the shipped one
    assert (root / "kyso.toml").read_text() == 'dev_pki = true\ndev_pki_path = "var/pki"\n'
    seal = x509.load_pem_x509_certificate((root / "var" / "pki" / "hospital-seal.cert.pem").read_bytes())
    assert any(f"127.0.0.1:{port}/pki" in str(ext.value) for ext in seal.extensions)  # its CRL and OCSP


def test_the_xml_commands_sign_and_verify_as_written(site: Site) -> None:
    site.put("giamdinhhs.xml", CORPUS / "xml" / "bhyt-giamdinhhs-4750.xml")
    site.put("discharge-cda.xml", CORPUS / "xml" / "hl7-cda-discharge-excerpt.xml")
    done = site.run("profile=xades")
    bhyt = (site.root / "giamdinhhs.signed.xml").read_bytes()
    assert b"<CHUKYDONVI><Signature" in bhyt
    assert b"SignedProperties" in (site.root / "discharge-cda.signed.xml").read_bytes()
    assert "Kyso-Audit-Seq" in (site.root / "headers.txt").read_text()
    (report,) = json_answers(done.stdout)
    assert report["indication"] == "TOTAL_PASSED", report
    # Debian's xmlsec1 on the bhyt signature (PKCS#1 v1.5), with the dev CA's certificates
    site.put("signed.xml", site.root / "giamdinhhs.signed.xml")
    site.put("root-ca.pem", DEV / "root-ca.cert.pem")
    site.put("intermediate-ca.pem", DEV / "intermediate-ca.cert.pem")
    checked = site.run("xmlsec1 --verify")
    assert "OK" in checked.stdout + checked.stderr


def test_the_client_commands_work_as_written(site: Site) -> None:
    out = site.run("kyso clients add his-main").stdout
    for name in ("his-main", "audit-team"):  # each add: the API key on its last line
        assert re.search(rf"client {name} .*\n(kyso_\S+)\n", out), out
    assert re.search(r"^his-main\s+his\s+active\s+hospital-seal,lab-seal$", out, re.M), out  # the list
    assert re.search(r"^audit-team\s+auditor\s+active\b", out, re.M), out
    assert out.rstrip().endswith("revoked client his-main"), out


def test_the_records_due_commands_work_as_written(site: Site, first_start: subprocess.CompletedProcess) -> None:
    # the horizon: after the dev certificates' end, so that the first start's record is due
    done = site.run("records due", {"2027-06-30": "2099-12-31"})
    due = json.JSONDecoder().raw_decode(done.stdout)[0]
    assert due["extend_before"] == "2099-12-31"
    assert "encounter/123/discharge" in [r["record_id"] for r in due["records"]]
    lines = done.stdout.splitlines()[-len(due["records"]):]  # kyso records due: one record a line
    assert any(line.split()[0] == "encounter/123/discharge" for line in lines), done.stdout


@pytest.fixture(scope="module")
def clinician_token(tmp_path_factory: pytest.TempPathFactory) -> str:
    """dr-an's key and certificate on a SoftHSM token labelled as the README's clinician."""
    softhsm.process_softhsm(tmp_path_factory.mktemp("softhsm"))
    label = "BS. Nguyen Van An"
    softhsm.init_token(label, softhsm.SO_PIN, TOKEN_PIN)
    key = serialization.load_pem_private_key((DEV / "dr-an.key.pem").read_bytes(), DEV_PASSPHRASE)
    cert = x509.load_pem_x509_certificate((DEV / "dr-an.cert.pem").read_bytes())
    softhsm.import_key_and_cert(label, TOKEN_PIN, key, cert, "signing key", b"\x01")  # type: ignore[arg-type]
    return label


def test_the_clinician_commands_work_as_written(site: Site, clinician_token: str) -> None:
    site.put("discharge.pdf", CORPUS / "pdf" / "001-trivial" / "minimal-document.pdf")
    site.put("bundle.json", CORPUS / "records" / "discharge-bundle.json")
    site.put("issuing-ca.pem", DEV / "intermediate-ca.cert.pem")
    module = {OPENSC: softhsm.MODULE}
    site.run("kyso session sign", module, KYSO_TOKEN_PIN=TOKEN_PIN)
    assert (site.root / "signed" / "discharge.signed.pdf").read_bytes().startswith(b"%PDF-")
    assert "signature" in json.loads((site.root / "signed" / "bundle.jws.json").read_text())

    done = site.run("kyso token sign-session", module, KYSO_TOKEN_PIN=TOKEN_PIN)
    started = json.loads((site.root / "session.json").read_text())
    assert [d["record_id"] for d in started["documents"]] == ["enc/42/discharge", "enc/42/bundle"]
    (completed,) = json_answers(done.stdout)
    pdf, jws = completed["documents"]
    assert pdf["record_id"] == "enc/42/discharge" and "pdf" in pdf and pdf["audit_seq"] > 0
    assert jws["record_id"] == "enc/42/bundle" and "signature" in jws


def test_the_phone_commands_start_and_poll_as_written(site: Site, gateway: NeacGateway) -> None:
    gateway.reset()
    site.put("discharge.pdf", CORPUS / "pdf" / "001-trivial" / "minimal-document.pdf")
    done = site.run('"signer": {"provider"')
    started = json.loads((site.root / "remote-session.json").read_text())
    assert started["status"] == "pending" and started["provider"] == "smartca", started
    assert [d["name"] for d in started["documents"]] == ["Giấy ra viện", "Tóm tắt bệnh án"]
    (polled,) = json_answers(done.stdout)
    assert polled["id"] == started["id"] and polled["status"] == "pending", polled
    # 3. the clinician confirms on the phone; the results, as the README shows them
    gateway.confirm(started["transaction_id"])
    key = (site.root / "var" / "dev-api-keys.txt").read_text().split("dev-his his ")[1].split()[0]
    ask = urllib.request.Request(f"{site.url}/api/v1/signing-sessions/{started['id']}",
                                 headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    deadline = time.monotonic() + 60
    while (answer := json.loads(urllib.request.urlopen(ask, timeout=30).read()))["status"] == "pending":
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    assert answer["status"] == "completed", answer
    pdf, jws = answer["documents"]
    assert pdf["record_id"] == "enc/42/discharge" and base64.b64decode(pdf["pdf"]).startswith(b"%PDF-")
    assert jws["record_id"] == "enc/42/bundle" and "signature" in jws


def test_the_auditor_commands_work_as_written(site: Site, first_start: subprocess.CompletedProcess) -> None:
    site.put("root-ca.pem", DEV / "root-ca.cert.pem")
    # 1. a checkpoint over HTTP (kept under the day's date), then one made on the server
    site.run("audit/checkpoint")
    (kept,) = [p for p in site.root.glob("checkpoint-2*.json") if p.name != "checkpoint-2026-11-01.json"]
    first, now = json.loads(kept.read_text()), json.loads((site.root / "checkpoint-now.json").read_text())
    assert first["tree_size"] < now["tree_size"], (first, now)
    # 2. the export
    site.run("audit/export")
    entries = [json.loads(line) for line in (site.root / "audit.jsonl").read_text().splitlines()]
    assert len(entries) > now["tree_size"]
    # 3. offline, with the checkpoint kept in step 1 under the README's name
    site.put("checkpoint-2026-11-01.json", kept)
    site.run("kyso audit verify audit.jsonl")
    # 4. the signed PDF of the first start: its entry, proven at the size of a kept checkpoint
    seq = int(re.findall(r"(?im)^kyso-audit-seq: *(\d+)", (site.root / "first-start-headers.txt").read_text())[0])
    site.put("checkpoint-5000.json", site.root / "checkpoint-now.json")
    site.run("kyso audit verify-entry", {
        "after=16": f"after={seq - 1}", "seq=17": f"seq={seq}", "tree_size=5000": f"tree_size={now['tree_size']}",
    })  # fmt: skip
    assert json.loads((site.root / "entry.json").read_text())["entries"][0]["seq"] == seq
    site.put("checkpoint-4000.json", kept)
    site.run("kyso audit verify-consistency", {
        "first=4000": f"first={first['tree_size']}", "second=5000": f"second={now['tree_size']}",
    })  # fmt: skip


def test_the_postgresql_commands_upgrade_and_serve_as_written(tmp_path: Path, pg_url: str) -> None:
    """On a throw-away PostgreSQL server (tests/pg.py) instead of db.example; the port is the
    test's, so that the block's ``kyso serve`` does not take 8080."""
    root, port = checkout_like(tmp_path / "kyso"), free_port()
    script = block("export KYSO_DATABASE_URL=postgresql")
    script = re.sub(r"postgresql\+psycopg://\S+", pg_url, script)
    script = script.replace("serve --workers 4", f"serve --workers 4 --port {port}")
    with serving_block(root, script, port) as url:
        with urllib.request.urlopen(url + "/readyz", timeout=30) as r:
            assert json.loads(r.read())["checks"]["database"] == "ok"
    log = (tmp_path / f"block-{port}.log").read_text()
    assert "4 worker(s)" in log and pg_url.split("@")[-1] in log, log[-3000:]


def test_the_backup_commands_work_as_written(site: Site) -> None:
    (site.root / "tmp").mkdir(exist_ok=True)
    moved = {"/backup": f"{site.root}/backup"}
    done = site.run("kyso db backup", moved)
    (made,) = (site.root / "backup").glob("kyso-*.sqlite3")
    assert re.search(r"audit entries, chain head [0-9a-f]+", done.stdout + done.stderr), done.stdout + done.stderr
    site.put("backup/kyso-2026-11-24.sqlite3", made)
    site.put("root-ca.pem", DEV / "root-ca.cert.pem")
    site.run("cp /backup/", {**moved, "/tmp/": f"{site.root}/tmp/"})
    assert (site.root / "tmp" / "check.jsonl").stat().st_size > 0


def json_answers(output: str) -> list[dict]:
    """The JSON answers curl printed one after another (grep's lines left out)."""
    text = "".join(line for line in output.splitlines(keepends=True) if not line.lower().startswith("kyso-"))
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found
