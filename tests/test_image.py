"""The container image's steps, run here (no Docker engine needed): the build-time script,
the unprivileged user, the data volume and the health check, and the deployment files."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from serving import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions(name: str) -> list[str]:
    """The arguments of every NAME instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_the_image_is_slim_runs_unprivileged_and_keeps_its_data_in_a_volume():
    assert instructions("FROM") == ["debian:bookworm-slim"]
    (user,) = instructions("USER")
    assert user not in ("root", "0")
    env = " ".join(instructions("ENV"))
    data_dir = re.search(r"KYSO_DATA_DIR=(\S+)", env).group(1)
    assert data_dir in instructions("VOLUME")[0]
    assert "KYSO_PKCS11_MODULE=" in env
    (run,) = instructions("RUN")
    assert "./scripts/bootstrap" in run and f"useradd --system --home-dir {data_dir}" in run
    assert (ROOT / "scripts" / "bootstrap").exists()


def healthcheck_command(opt: Path) -> list[str]:
    (check,) = instructions("HEALTHCHECK")
    command = re.search(r"CMD (\[.*\])", check).group(1)
    return [part.replace("/opt/kyso", str(opt)) for part in yaml.safe_load(command)]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    """/opt/kyso of the image, built here as the Dockerfile builds it: the checkout's files
    copied, then ``scripts/bootstrap`` with Debian's Python (the image has no other)."""
    assert os.geteuid() == 0, "the image steps are exercised as root, as CI runs them"
    base = Path(tempfile.mkdtemp(prefix="kyso-image-"))  # every parent enterable by others
    base.chmod(0o755)
    opt = base / "opt" / "kyso"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (opt / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, opt / name)
    for d in [base, base / "opt", *opt.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    build = subprocess.run(
        ["./scripts/bootstrap"], cwd=opt, env={**os.environ, "PYTHON": "/usr/bin/python3"},
        capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    yield opt
    shutil.rmtree(base)


def test_the_service_runs_as_an_unprivileged_user_and_the_health_check_follows_it(image):
    data = image.parent.parent / "var-lib-kyso"  # the image's volume
    data.mkdir()
    shutil.chown(data, "nobody", "nogroup")
    port = free_port()
    env = {
        "PATH": f"{image / '.venv' / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "KYSO_DATA_DIR": str(data),
        "HOME": str(data),
    }
    proc = subprocess.Popen(
        [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "nobody", "--", "kyso", "serve", "--port", str(port)],
        env=env,
        cwd=data,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    command = [*healthcheck_command(image)[:-1], f"{url}/healthz"]
    try:
        wait_until_up(url, proc)
        assert subprocess.run(command, timeout=10).returncode == 0
        nobody = pwd.getpwnam("nobody").pw_uid
        assert (data / "kyso.sqlite3").stat().st_uid == nobody
        keys = data / "dev-api-keys.txt"
        assert keys.stat().st_uid == nobody and keys.stat().st_mode & 0o777 == 0o600
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
    assert subprocess.run(command, timeout=10, capture_output=True).returncode == 1


def test_compose_runs_postgresql_migrates_then_serves_with_secrets_from_files():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["kyso", "db", "upgrade"]
    kyso = services["kyso"]
    assert kyso["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert kyso["environment"]["KYSO_DATABASE_URL_FILE"].startswith("/run/secrets/")
    assert "DATABASE_URL" not in kyso["environment"] or "://" not in kyso["environment"]["DATABASE_URL"]
    assert any(v.endswith(":/var/lib/kyso") for v in kyso["volumes"])
    mounted = kyso["volumes"][0].split(":")[0]
    assert (ROOT / mounted).exists()


def test_the_systemd_unit_checks_the_configuration_before_serving_as_its_own_user():
    unit = (ROOT / "deploy" / "kyso.service").read_text(encoding="utf-8")
    assert "\nUser=kyso\n" in unit
    pre = re.search(r"^ExecStartPre=(.*)$", unit, re.M).group(1)
    start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    assert pre.endswith("kyso config check") and " serve " in start
    assert "KYSO_DATABASE_URL_FILE=" in unit
