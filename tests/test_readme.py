"""The README's first-start commands, copied as they are written, against a real server:
the placeholders are the corpus files and the server's address."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from pyhanko.pdf_utils.reader import PdfFileReader
from serving import kyso_serve
from support import CORPUS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def first_start_block() -> str:
    section = README[README.index("## First start") : README.index("## Using the API")]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return next(b for b in blocks if "api/v1/sign/pdf" in b)


def test_the_first_start_commands_work_as_written(tmp_path):
    block = first_start_block()
    assert "127.0.0.1:8080" in block
    shutil.copy(CORPUS / "pdf" / "001-trivial" / "minimal-document.pdf", tmp_path / "giay-ra-vien.pdf")
    shutil.copy(CORPUS / "records" / "discharge-bundle.json", tmp_path / "bundle.json")
    (tmp_path / "var").mkdir()
    with kyso_serve(tmp_path / "var") as (url, _proc, _log):
        script = block.replace("http://127.0.0.1:8080", url)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "signed.pdf").read_bytes().startswith(b"%PDF-")
    headers = (tmp_path / "headers.txt").read_text()
    assert "Kyso-Audit-Seq" in headers and "Kyso-Document-SHA256" in headers
    answers = json_answers(done.stdout)
    assert len(answers) == 4  # sign/json, the record, the list, the report
    record, report = answers[1], answers[3]
    assert [s["key"] for s in record["signatures"]] == ["hospital-seal"]
    assert report["indication"] == "TOTAL_PASSED", report
    with (tmp_path / "signed.pdf").open("rb") as signed:
        (signature,) = PdfFileReader(signed).embedded_signatures
        assert signature.sig_object["/Reason"] == "Giấy ra viện"  # sent and kept unmangled


def json_answers(output: str) -> list[dict]:
    """The JSON answers curl printed one after another (grep's lines left out)."""
    text = "".join(line for line in output.splitlines(keepends=True) if not line.lower().startswith("kyso-"))
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found
