"""`kyso db backup`: an online copy of the embedded SQLite database, whole and checked."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import make_config

from kyso.audit.offline.verify import verify_export
from kyso.cli import main
from kyso.service import Kyso


def kyso_cli(data_dir: Path, *args: str, **env: str) -> tuple[int, str]:
    environment = {"KYSO_DATA_DIR": str(data_dir), "KYSO_CONFIG": None, "KYSO_DATABASE_URL": None}
    result = CliRunner().invoke(main, list(args), env={**environment, **env})
    return result.exit_code, result.output


def test_a_backup_taken_while_the_log_grows_is_a_whole_verifiable_copy(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    kyso = Kyso.open(make_config(data_dir))
    stop, written = threading.Event(), [0]

    def keep_writing() -> None:
        while not stop.is_set() and written[0] < 5000:
            kyso.record_access("his-main", "records.read", record_id=f"encounter/{written[0]}")
            written[0] += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while written[0] < 200:
            stop.wait(0.01)
        code, out = kyso_cli(data_dir, "db", "backup", str(tmp_path / "kyso-backup.sqlite3"))
    finally:
        stop.set()
        writer.join()
        kyso.close()
    assert code == 0, out
    entries = int(out.split(" audit entries")[0].rsplit(" ", 1)[1])
    assert 200 <= entries <= written[0], out  # a snapshot of some moment while it grew

    copy = Kyso.open(
        make_config(
            tmp_path / "restored", database_url=f"sqlite:///{tmp_path / 'kyso-backup.sqlite3'}"
        )
    )
    try:
        assert copy.audit.size() == entries
        report = verify_export(copy.audit.export_lines())
        assert report.ok and report.entries == entries, report.problem
        assert report.chain_head in out
    finally:
        copy.close()


def test_a_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    Kyso.open(make_config(tmp_path / "var")).close()
    target = tmp_path / "kept.sqlite3"
    target.write_bytes(b"yesterday's backup")
    code, out = kyso_cli(tmp_path / "var", "db", "backup", str(target))
    assert code == 2 and "exists already" in out
    assert target.read_bytes() == b"yesterday's backup"
    assert not (tmp_path / "kept.sqlite3.partial").exists()



def test_a_backup_into_a_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    Kyso.open(make_config(tmp_path / "var")).close()
    code, out = kyso_cli(tmp_path / "var", "db", "backup", str(tmp_path / "backup" / "kyso.sqlite3"))
    assert code == 2 and out.splitlines() == [f"kyso: no backup made: there is no folder {tmp_path / 'backup'} "
                                              "to put the backup in: make it first"], out
    assert not (tmp_path / "backup").exists()

@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql+psycopg://kyso@127.0.0.1:1/kyso", "pg_dump"),
        ("sqlite:////nonexistent/kyso.sqlite3", "there is no database"),
    ],
)
def test_what_cannot_be_backed_up_here_is_a_usage_error(
    tmp_path: Path, url: str, needle: str
) -> None:
    code, out = kyso_cli(
        tmp_path, "db", "backup", str(tmp_path / "b.sqlite3"), KYSO_DATABASE_URL=url
    )
    assert code == 2 and needle in out and not (tmp_path / "b.sqlite3").exists()
