"""The command line, run as a user would: a subprocess with its own data directory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import KYSO, corpus_pdfs, corpus_records, make_config

from kyso.api import create_app
from kyso.service import Kyso


def kyso(data_dir: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KYSO_DATA_DIR": str(data_dir)}
    env.pop("KYSO_CONFIG", None)
    return subprocess.run([KYSO, *args], env=env, capture_output=True, input=stdin)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a few signatures in its log."""
    d = tmp_path_factory.mktemp("cli")
    out = d / "signed.pdf"
    assert kyso(d, "sign", "pdf", str(corpus_pdfs()[0]), str(out), "--key", "hospital-seal", "--level", "B-B").returncode == 0
    record = corpus_records()[0]
    assert kyso(d, "sign", "json", str(record), "--key", "lab-seal", "--level", "B-B").returncode == 0
    assert kyso(d, "clients", "add", "his-main", "--role", "his", "--keys", "hospital-seal").returncode == 0
    return d


def test_clients_add_prints_the_api_key_alone_on_the_last_line(tmp_path: Path) -> None:
    result = kyso(tmp_path, "clients", "add", "his-main", "--role", "his", "--keys", "hospital-seal,lab-seal")
    assert result.returncode == 0, result.stderr
    last = result.stdout.decode().strip().splitlines()[-1]
    assert last.startswith("kyso_") and " " not in last
    listed = kyso(tmp_path, "clients", "list").stdout.decode()
    assert "his-main\this\tactive\thospital-seal,lab-seal" in listed
    assert last not in listed  # the key is never shown again
    assert kyso(tmp_path, "clients", "revoke", "his-main").returncode == 0
    assert "his-main\this\trevoked" in kyso(tmp_path, "clients", "list").stdout.decode()


def test_an_api_key_revoked_with_the_cli_is_refused_by_the_service(tmp_path: Path) -> None:
    added = kyso(tmp_path, "clients", "add", "his-old", "--role", "his", "--keys", "lab-seal")
    api_key = added.stdout.decode().strip().splitlines()[-1]

    def keys_status() -> int:
        service = Kyso.open(make_config(tmp_path))
        try:
            client = create_app(kyso=service).test_client()
            return client.get("/api/v1/keys", headers={"Authorization": f"Bearer {api_key}"}).status_code
        finally:
            service.close()

    assert keys_status() == 200
    assert kyso(tmp_path, "clients", "revoke", "his-old").returncode == 0
    assert keys_status() == 401


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert kyso(tmp_path, "clients", "add", "x", "--role", "superuser").returncode == 2
    assert kyso(tmp_path, "sign", "pdf", "/nonexistent.pdf", str(tmp_path / "o.pdf"), "--key", "lab-seal").returncode == 2
    result = kyso(tmp_path, "sign", "pdf", str(corpus_pdfs()[0]), str(tmp_path / "o.pdf"), "--key", "nope")
    assert result.returncode == 2 and b"unknown_key" in result.stderr


def test_every_command_has_help(tmp_path: Path) -> None:
    for args in (["--help"], ["serve", "--help"], ["clients", "add", "--help"], ["audit", "verify", "--help"],
                 ["sign", "pdf", "--help"], ["keys", "list", "--help"], ["pki", "init-dev", "--help"]):
        assert kyso(tmp_path, *args).returncode == 0, args


def test_keys_list_shows_each_alias_with_kind_algorithm_expiry_and_health(data_dir: Path) -> None:
    out = kyso(data_dir, "keys", "list").stdout.decode()
    line = next(line for line in out.splitlines() if line.startswith("lab-seal\t"))
    assert line.split("\t")[:5] == ["lab-seal", "software", "EC-P256", "2055-12-31", "ok"]


def test_an_exported_log_verifies_offline_and_an_edited_entry_is_named(data_dir: Path, tmp_path: Path) -> None:
    export = tmp_path / "audit.jsonl"
    result = kyso(data_dir, "audit", "export", str(export))
    assert result.returncode == 0, result.stderr
    lines = export.read_bytes().splitlines(keepends=True)
    entries = [json.loads(line) for line in lines if b'"seq"' in line]
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    assert {e["action"] for e in entries} >= {"sign.pdf", "sign.json", "client.add", "audit.export"}

    ok = kyso(data_dir, "audit", "verify", str(export), "--quiet")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    for victim in range(len(entries) - 1):  # the last entry is covered only by a checkpoint
        edited = [json.loads(line) for line in lines]
        edited[victim]["record_id"] = "changed"
        tampered = tmp_path / f"tampered-{victim}.jsonl"
        tampered.write_text("".join(json.dumps(e, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n" for e in edited))
        bad = kyso(data_dir, "audit", "verify", str(tampered), "--quiet")
        assert bad.returncode == 1, bad.stdout
        assert f"seq {victim}" in bad.stdout.decode(), bad.stdout


def test_verify_exits_1_for_a_changed_pdf_and_0_for_a_good_one(data_dir: Path, tmp_path: Path) -> None:
    signed = (data_dir / "signed.pdf").read_bytes()
    good = kyso(data_dir, "verify", str(data_dir / "signed.pdf"))
    assert good.returncode == 0, good.stdout
    assert json.loads(good.stdout)["indication"] == "TOTAL_PASSED"
    i = signed.index(b"/Contents") - 200  # a byte inside the signed range
    changed = signed[:i] + bytes([signed[i] ^ 0x01]) + signed[i + 1 :]
    (tmp_path / "changed.pdf").write_bytes(changed)
    bad = kyso(data_dir, "verify", str(tmp_path / "changed.pdf"))
    assert bad.returncode == 1


def test_verify_lang_vi_says_in_plain_vietnamese_who_signed_when_and_whether_it_changed(
    data_dir: Path, tmp_path: Path
) -> None:
    good = kyso(data_dir, "verify", str(data_dir / "signed.pdf"), "--lang", "vi")
    assert good.returncode == 0, good.stderr
    text = good.stdout.decode()
    assert text.startswith("Kết luận về tài liệu: Hợp lệ\n")
    assert "Người ký: Bệnh viện" in text and "(giờ Việt Nam, UTC+7)" in text
    assert "Sau khi ký: Tài liệu không bị sửa đổi sau khi ký." in text
    assert "Nhật ký kyso: Nhật ký kyso lưu đúng tệp này" in text
    assert "{" not in text  # words, not JSON
    signed = (data_dir / "signed.pdf").read_bytes()
    i = signed.index(b"/Contents") - 200
    (tmp_path / "changed.pdf").write_bytes(signed[:i] + bytes([signed[i] ^ 0x01]) + signed[i + 1 :])
    bad = kyso(data_dir, "verify", str(tmp_path / "changed.pdf"), "--lang", "vi")
    assert bad.returncode == 1
    assert "tài liệu đã bị sửa đổi sau khi ký" in bad.stdout.decode()
    as_json = json.loads(kyso(data_dir, "verify", str(data_dir / "signed.pdf"), "--lang", "en", "--json").stdout)
    assert as_json["explanation"]["lang"] == "en" and as_json["signatures"][0]["explanation"]["terms"]


def test_records_due_lists_the_records_to_extend_before_a_day(tmp_path: Path) -> None:
    data, signed = tmp_path / "var", tmp_path / "signed.pdf"
    result = kyso(data, "sign", "pdf", str(corpus_pdfs()[5]), str(signed), "--key", "hospital-seal",
                  "--record-id", "encounter/9/discharge", "--level", "B-B")
    assert result.returncode == 0, result.stderr
    result = kyso(data, "records", "due", "--before", "2100-01-01")
    assert result.returncode == 0 and result.stdout.startswith(b"encounter/9/discharge\t"), result.stderr
    assert b"\tB-B\t" in result.stdout
    result = kyso(data, "records", "due", "--before", "2000-01-01")
    assert (result.returncode, result.stdout) == (0, b"")
    assert kyso(data, "records", "due", "--before", "soon").returncode == 2
