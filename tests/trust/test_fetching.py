"""What kyso fetches: http(s) only, allowed hosts only, never a private or loopback address
unless allowed (by address, after resolving), short timeouts, one budget per request,
bounded answers, no redirects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hostile_net import CountingServer, StallingServer

from kyso.trust.fetching import FetchPolicy, FetchRefused, GuardedHttp

LOOSE = FetchPolicy(allow_private=True, timeout_seconds=0.5, budget_seconds=1.2)


@pytest.fixture
def counting() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


@pytest.fixture
def stalling() -> Iterator[StallingServer]:
    server = StallingServer()
    yield server
    server.close()


def fetch(policy: FetchPolicy, *urls: str) -> list[str]:
    """Fetch each URL under one session; what happened to each ('ok' or the refusal)."""
    session = policy.start()
    assert session is not None

    async def run() -> list[str]:
        http = GuardedHttp(session)
        outcomes = []
        try:
            for url in urls:
                try:
                    async with http.get(url) as answer:
                        await answer.read()
                    outcomes.append("ok")
                except Exception as exc:  # the fetchers see aiohttp.ClientError
                    assert isinstance(exc, FetchRefused) or exc.__class__.__module__.startswith("aiohttp")
                    outcomes.append(str(exc))
        finally:
            await http.close()
        return outcomes

    return asyncio.run(run())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x", "http://[::1]:9/x", "http://[::ffff:127.0.0.1]:9/x",
        "http://10.1.2.3/x", "http://192.168.1.1/x", "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/x", "http://0.0.0.0/x", "http://224.0.0.1/x",
    ],
)  # fmt: skip
def test_private_loopback_and_link_local_addresses_are_refused(url: str) -> None:
    session = FetchPolicy().start()
    assert session is not None
    with pytest.raises(FetchRefused, match="private or loopback"):
        session.admit(url)


@pytest.mark.parametrize("url", ["ftp://example.vn/ca.crl", "file:///etc/passwd", "ldap://x/c", "http:///x"])
def test_only_http_and_https_urls_are_fetched(url: str) -> None:
    with pytest.raises(FetchRefused):
        FetchPolicy().start().admit(url)  # type: ignore[union-attr]


def test_a_name_that_resolves_to_loopback_is_refused_by_its_address(counting) -> None:
    port = counting.base.rsplit(":", 1)[1]
    (outcome,) = fetch(FetchPolicy(timeout_seconds=2), f"http://localhost:{port}/ca.crl")
    assert "private or loopback" in outcome
    assert counting.requests == []


def test_the_host_list_is_the_only_way_out_when_it_is_set() -> None:
    policy = FetchPolicy(allow_hosts=("crl.ca.vn", "*.nic.vn"))
    assert policy.host_allowed("crl.ca.vn") and policy.host_allowed("CRL.CA.VN.")
    assert policy.host_allowed("ocsp.nic.vn") and policy.host_allowed("nic.vn")
    assert not policy.host_allowed("evil.vn") and not policy.host_allowed("crl.ca.vn.evil.vn")
    with pytest.raises(FetchRefused, match="fetch_allow_hosts"):
        policy.start().admit("http://evil.vn/ca.crl")  # type: ignore[union-attr]


def test_allowed_private_addresses_are_fetched(counting) -> None:
    assert "status 404" in fetch(LOOSE, f"{counting.base}/ca.crl")[0]
    assert counting.requests == ["/ca.crl"]


def test_a_stalling_server_costs_one_timeout_and_the_request_one_budget(stalling) -> None:
    started = time.monotonic()
    outcomes = fetch(LOOSE, *[f"{stalling.base}/{n}.crl" for n in range(6)])
    elapsed = time.monotonic() - started
    assert all("no answer within" in o or "spent" in o for o in outcomes), outcomes
    assert "spent" in outcomes[-1]
    assert elapsed < LOOSE.budget_seconds + 0.5, elapsed


def test_a_request_makes_at_most_its_number_of_fetches(counting) -> None:
    policy = FetchPolicy(allow_private=True, max_requests=3)
    outcomes = fetch(policy, *[f"{counting.base}/{n}" for n in range(5)])
    assert len(counting.requests) == 3 and all("spent" in o for o in outcomes[3:])


class _Big(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/big")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()  # no Content-Length: the size shows only while reading
        for _ in range(64):
            self.wfile.write(b"x" * 65536)

    def log_message(self, *args) -> None:
        return None


def test_answers_are_bounded_and_redirects_not_followed() -> None:
    import threading

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Big)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        policy = FetchPolicy(allow_private=True, max_bytes=1024 * 1024)
        big, redirect = fetch(policy, f"{base}/big", f"{base}/redirect")
        assert "longer than" in big
        assert "status 302" in redirect
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetching_can_be_switched_off() -> None:
    assert FetchPolicy(enabled=False).start() is None


def test_extending_a_pdf_signed_under_an_untrusted_ca_fetches_nothing(counting) -> None:
    from forged import leaf_pointing_at, own_ca
    from support import corpus_pdfs

    from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
    from kyso.errors import InvalidRequest
    from kyso.keystore.software import load_software_key
    from kyso.signer.ltv import async_extend_pdf
    from kyso.signer.pades import PdfSignOptions, async_sign_pdf
    from kyso.signer.timestamp.authority import TimestampAuthority
    from kyso.signer.timestamp.client import TimestampClient, TimestampSource
    from kyso.trust.store import TrustStore, load_certificates

    pki = dev_pki_dir()
    chain = (str(pki / "intermediate-ca.cert.pem"), str(pki / "root-ca.cert.pem"))
    tsa = TimestampAuthority(load_software_key("tsa", pki / "tsa.key.pem", DEV_PASSPHRASE, pki / "tsa.cert.pem", chain))
    stamps = TimestampClient([TimestampSource("built-in", tsa.respond)])
    ca, ca_key = own_ca("Nobody's CA")
    key = leaf_pointing_at(ca, ca_key, counting.base)
    signed = asyncio.run(async_sign_pdf(corpus_pdfs()[0].read_bytes(), key, PdfSignOptions(level="B-T"), stamps)).pdf
    root = load_certificates(pki / "root-ca.cert.pem")[0]
    trust = TrustStore((root.dump(),), fetch_policy=FetchPolicy(allow_private=True))

    async def extend() -> None:
        context = trust.revocation_context()
        try:
            await async_extend_pdf(signed, "B-LT", stamps, context)
        finally:
            await context.aclose()

    with pytest.raises(InvalidRequest, match="does not chain to a configured trust anchor"):
        asyncio.run(extend())
    assert counting.requests == []
