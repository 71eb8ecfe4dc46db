"""A serving process remembers the API keys it verified for a few seconds: a client's calls
read its row once, and a revocation still counts within those seconds (at once when made in
the same process)."""

from __future__ import annotations

import pytest
from support import Service

from kyso.service import API_KEY_CACHE_SECONDS, Kyso, VerifiedKeys

BODY = {"key": "lab-seal", "payload": {"a": 1}, "level": "B-B"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(service: Service) -> None:
    api_key = service.kyso.add_client("test", "his-elsewhere", "his", ("lab-seal",))
    clock = Clock()
    keys = VerifiedKeys(service.kyso.clients, API_KEY_CACHE_SECONDS, clock)
    client = keys.authenticate(api_key)
    assert client is not None and client.name == "his-elsewhere"
    other = Kyso.open(service.kyso.config)  # another worker, or `kyso clients revoke`
    try:
        other.revoke_client("admin", "his-elsewhere")
    finally:
        other.close()
    clock.now = API_KEY_CACHE_SECONDS - 0.1
    assert keys.authenticate(api_key) is not None  # believed until its time is up
    clock.now = API_KEY_CACHE_SECONDS + 0.01
    assert keys.authenticate(api_key) is None
    assert keys.authenticate(api_key) is None


def test_a_clients_calls_read_its_row_once_and_unknown_keys_every_time(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_key = service.kyso.add_client("test", "his-busy", "his", ("lab-seal",))
    service.kyso.api_keys.forget()
    reads: list[str] = []
    real = service.kyso.clients.authenticate

    def counted(presented: str):
        reads.append(presented)
        return real(presented)

    monkeypatch.setattr(service.kyso.clients, "authenticate", counted)
    headers = {"Authorization": f"Bearer {api_key}"}
    for _ in range(3):
        assert service.client.post("/api/v1/sign/json", json=BODY, headers=headers).status_code == 200
    assert reads == [api_key]
    unknown = {"Authorization": "Bearer kyso_not-a-key"}
    for _ in range(2):
        assert service.client.post("/api/v1/sign/json", json=BODY, headers=unknown).status_code == 401
    assert reads == [api_key, "kyso_not-a-key", "kyso_not-a-key"]


def test_a_revocation_in_this_process_counts_at_once_even_for_a_lookup_under_way(
    service: Service,
) -> None:
    api_key = service.kyso.add_client("test", "his-racing", "his", ("lab-seal",))
    keys = VerifiedKeys(service.kyso.clients)
    real = keys.registry.authenticate

    class RevokedMeanwhile:
        def authenticate(self, presented: str):
            found = real(presented)  # read before the revocation commits...
            keys.forget()  # ...which forgets every key while this lookup is under way
            return found

    keys.registry = RevokedMeanwhile()  # type: ignore[assignment]
    assert keys.authenticate(api_key) is not None
    keys.registry = service.kyso.clients
    with service.kyso.db.writer.begin() as conn:
        service.kyso.clients.revoke("his-racing", conn)
    assert keys.authenticate(api_key) is None  # the stale answer was not kept
