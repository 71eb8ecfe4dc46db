"""constraints.txt pins what the suite runs with: a fresh install gets the versions that passed."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"


def pins() -> dict[str, str]:
    found = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[name.lower().replace("_", "-")] = version
    return found


def test_every_installed_dependency_is_pinned_at_the_version_installed():
    pinned = pins()
    wanted = {"pyhanko", "cryptography", "flask", "sqlalchemy", "lxml", "xmlsec", "ruff", "mypy"}
    assert wanted <= set(pinned)
    for name, version in pinned.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment does not install (bench)
        assert installed == version, f"{name}: installed {installed}, pinned {version}: run scripts/lock"
