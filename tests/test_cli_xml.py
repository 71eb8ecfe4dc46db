"""``kyso sign xml`` and ``kyso verify FILE.xml``, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import HOSTILE_XML, corpus_xml


def kyso(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KYSO_DATA_DIR": str(data_dir)}
    env.pop("KYSO_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kyso", *args], env=env, capture_output=True)


def test_sign_xml_then_verify_it_and_a_changed_copy(tmp_path: Path) -> None:
    sample = next(p for p in corpus_xml() if p.name == "tt12-danhmuc-bophan.xml")
    out = tmp_path / "signed.xml"
    signed = kyso(tmp_path, "sign", "xml", str(sample), str(out), "--key", "lab-seal", "--level", "B-T",
                  "--record-id", "danhmuc/2026")
    assert signed.returncode == 0, signed.stderr
    assert b"profile bhyt" in signed.stdout and out.read_bytes().count(b"<Signature ") == 1

    verified = kyso(tmp_path, "verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["indication"] == "TOTAL_PASSED"
    assert report["signatures"][0]["level"] == "B-T"
    assert report["signatures"][0]["registered"]["record_id"] == "danhmuc/2026"

    changed = tmp_path / "changed.xml"
    changed.write_bytes(out.read_bytes().replace(b"<SO_GIUONG>60<", b"<SO_GIUONG>80<"))
    failed = kyso(tmp_path, "verify", str(changed))
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["signatures"][0]["sub_indication"] == "HASH_FAILURE"


def test_hostile_xml_is_a_usage_error_and_xades_is_chosen_by_option(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.xml"
    hostile.write_bytes(HOSTILE_XML["external-entity"])
    result = kyso(tmp_path, "sign", "xml", str(hostile), str(tmp_path / "o.xml"), "--key", "lab-seal")
    assert result.returncode == 2 and b"invalid_xml" in result.stderr
    assert not (tmp_path / "o.xml").exists()
    sample = corpus_xml()[0]
    out = tmp_path / "xades.xml"
    made = kyso(tmp_path, "sign", "xml", str(sample), str(out), "--key", "hospital-seal", "--level", "B-B",
                "--profile", "xades")
    assert made.returncode == 0, made.stderr
    assert b"QualifyingProperties" in out.read_bytes()
    assert kyso(tmp_path, "sign", "xml", "--help").returncode == 0
