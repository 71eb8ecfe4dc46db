"""Request rates: 429 rate_limited with Retry-After, per API client and per address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Service, make_config, new_database_url

from kyso.api import create_app
from kyso.api.limits import TokenBuckets
from kyso.config import LimitsConfig
from kyso.errors import ConfigError
from kyso.service import Kyso

pytestmark = pytest.mark.each_database  # the tests that use `limited`


def test_a_bucket_allows_a_minutes_worth_at_once_then_refills_evenly() -> None:
    buckets = TokenBuckets(per_minute=6)
    assert [buckets.take("a", now=100.0) for _ in range(6)] == [0.0] * 6
    assert buckets.take("a", now=100.0) == pytest.approx(10.0)  # one call every 10 s
    assert buckets.take("b", now=100.0) == 0.0  # every key has its own
    assert buckets.take("a", now=105.0) == pytest.approx(5.0)
    assert buckets.take("a", now=110.0) == 0.0
    assert buckets.take("a", now=110.0) == pytest.approx(10.0)


def test_a_budget_of_zero_never_refuses_and_old_keys_are_forgotten() -> None:
    assert all(TokenBuckets(per_minute=0).take("a") == 0.0 for _ in range(1000))
    buckets = TokenBuckets(per_minute=1, max_keys=3)
    for key in "abcd":
        assert buckets.take(key, now=0.0) == 0.0
    assert buckets.take("a", now=0.0) == 0.0  # forgotten, so full again
    assert buckets.take("d", now=0.0) > 0


@pytest.fixture
def limited(request: pytest.FixtureRequest, tmp_path: Path, database: str) -> Iterator[Service]:
    limits = LimitsConfig(client_per_minute=3, public_per_minute=2, tsa_per_minute=1)
    config = make_config(tmp_path, limits=limits, database_url=new_database_url(request, database))
    kyso = Kyso.open(config)
    keys = {
        "his": kyso.add_client("test", "his", "his", ("lab-seal",)),
        "other": kyso.add_client("test", "other", "his", ("lab-seal",)),
    }
    yield Service(kyso, create_app(kyso=kyso).test_client(), keys)
    kyso.close()


def sign(service: Service, client: str = "his"):
    body = {"key": "lab-seal", "payload": {"x": 1}, "level": "B-B"}
    return service.client.post("/api/v1/sign/json", json=body, headers=service.auth(client))


def test_a_client_over_its_budget_gets_429_with_retry_after_and_no_audit_entry(
    limited: Service,
) -> None:
    assert [sign(limited).status_code for _ in range(3)] == [200, 200, 200]
    size = limited.kyso.audit.size()
    refused = sign(limited)
    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "20"  # 3 a minute: one every 20 s
    assert refused.mimetype == "application/problem+json" and "'his'" in refused.json["detail"]
    assert limited.kyso.audit.size() == size  # a flood must not write the log
    assert sign(limited, "other").status_code == 200  # each client has its own budget


def test_failed_api_keys_and_the_public_endpoints_spend_the_address_budget(
    limited: Service,
) -> None:
    bad = {"Authorization": "Bearer not-a-key"}
    codes = [limited.client.get("/api/v1/keys", headers=bad).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    page = limited.client.post("/page/verify", data=b"%PDF-1.7", content_type="application/pdf")
    assert page.status_code == 429
    assert sign(limited).status_code == 200  # a valid key does not spend the address budget


def test_the_built_in_tsa_has_a_budget_of_its_own(limited: Service) -> None:
    first = limited.client.post("/tsa", data=b"x", content_type="application/timestamp-query")
    assert first.status_code == 200  # a rejection TimeStampResp: the query is garbage
    again = limited.client.post("/tsa", data=b"x", content_type="application/timestamp-query")
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    assert (
        limited.client.post(
            "/page/verify", data=b"%PDF", content_type="application/pdf"
        ).status_code
        == 400
    )


def test_the_limits_come_from_the_configuration_file(tmp_path: Path) -> None:
    from kyso.config import load_config

    path = tmp_path / "kyso.toml"
    path.write_text("[limits]\nclient_per_minute = 600\npublic_per_minute = 0\n", encoding="utf-8")
    config = load_config(path, env={"KYSO_DATA_DIR": str(tmp_path)})
    assert config.limits == LimitsConfig(
        client_per_minute=600, public_per_minute=0, tsa_per_minute=0
    )
    path.write_text("[limits]\nper_hour = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(path, env={"KYSO_DATA_DIR": str(tmp_path)})
