"""API clients: names, roles, granted key aliases, and API keys kept only as hashes."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from kyso.db import Database, clients
from kyso.errors import InvalidRequest, NotFound

ROLES = ("his", "auditor", "admin")
KEY_PREFIX = "kyso_"


@dataclass(frozen=True)
class Client:
    name: str
    role: str
    keys: tuple[str, ...]
    revoked: bool = False

    def may_use(self, alias: str) -> bool:
        return alias in self.keys or "*" in self.keys


def hash_api_key(api_key: str) -> str:
    # API keys are 256-bit random strings: a plain SHA-256 is enough, and lets us
    # find the client by an index lookup rather than by trying every stored hash.
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _row_to_client(r) -> Client:
    return Client(name=r.name, role=r.role, keys=tuple(json.loads(r.keys)), revoked=bool(r.revoked))


class ClientRegistry:
    def __init__(self, db: Database):
        self.db = db

    def add(self, name: str, role: str, keys: tuple[str, ...] = (), conn: Connection | None = None) -> tuple[Client, str]:
        """Create a client; return it with its API key, which is shown this once.
        With ``conn``, the row is written in the caller's transaction."""
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not name or len(name) > 200 or not name.isprintable() or any(c.isspace() for c in name):
            raise InvalidRequest("a client name is 1 to 200 printable characters without spaces")
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = {
            "name": name,
            "role": role,
            "keys": json.dumps(list(keys)),
            "key_hash": hash_api_key(api_key),
            "created": datetime.now(UTC),
            "revoked": False,
        }
        try:
            if conn is not None:
                with conn.begin_nested():
                    conn.execute(insert(clients).values(**row))
            else:
                with self.db.writing() as own:
                    own.execute(insert(clients).values(**row))
        except IntegrityError:
            raise InvalidRequest(f"a client named {name!r} exists already") from None
        return Client(name, role, tuple(keys)), api_key

    def authenticate(self, api_key: str) -> Client | None:
        with self.db.reader.connect() as conn:
            r = conn.execute(select(clients).where(clients.c.key_hash == hash_api_key(api_key))).first()
        if r is None or r.revoked:
            return None
        return _row_to_client(r)

    def list(self) -> list[Client]:
        with self.db.reader.connect() as conn:
            return [_row_to_client(r) for r in conn.execute(select(clients).order_by(clients.c.name))]

    def revoke(self, name: str, conn: Connection) -> None:
        done = conn.execute(update(clients).where(clients.c.name == name).values(revoked=True)).rowcount
        if not done:
            raise NotFound(f"no client named {name!r}")

    def count(self) -> int:
        with self.db.reader.connect() as conn:
            return len(conn.execute(select(clients.c.name)).all())
