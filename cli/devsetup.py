"""First start of the embedded default: dev clients and where their API keys are."""

from __future__ import annotations

import os
from pathlib import Path

from kyso.config import DEV_KEY_ALIASES
from kyso.service import Kyso

DEV_CLIENTS = (("dev-his", "his", DEV_KEY_ALIASES), ("dev-auditor", "auditor", ()))


def ensure_dev_clients(kyso: Kyso) -> Path | None:
    """With no clients at all, create ``dev-his`` (every dev key) and ``dev-auditor`` and
    write their API keys to ``$KYSO_DATA_DIR/dev-api-keys.txt`` (mode 0600)."""
    if not kyso.config.dev_pki or kyso.clients.count() > 0:
        return None
    path = kyso.config.data_dir / "dev-api-keys.txt"
    lines = ["# kyso dev API keys (DEV ONLY). Use: Authorization: Bearer <key>"]
    for name, role, keys in DEV_CLIENTS:
        granted = tuple(k for k in keys if k in kyso.keystore)
        api_key = kyso.add_client("kyso-setup", name, role, granted)
        lines.append(f"{name} {role} {api_key}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path
