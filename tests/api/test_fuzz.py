"""Fuzzing a real ``kyso serve``: schemathesis from the service's own OpenAPI document, with
real PDF and DER bodies, and mutations of the corpus PDFs; never a 5xx. Bounded: a few
examples per operation and a fixed number of mutations, seeded."""

from __future__ import annotations

import json
import random
import urllib.request
from pathlib import Path

import hypothesis.strategies as st
import schemathesis
from asn1crypto import algos, tsp
from hypothesis import HealthCheck, Phase, given, settings
from serving import api_key, kyso_serve, post
from support import corpus_pdfs

EXAMPLES = 8  # per operation
MUTATIONS = 45


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random damage: flipped bytes, a cut, a spliced copy, a removed span, or numbers
    changed in the structure (offsets, lengths, object numbers)."""
    buf = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 20)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:
        buf = buf[: rng.randrange(len(buf) // 2, len(buf))] + buf[-200:]
    elif kind == 2:
        at = rng.randrange(len(buf))
        buf[at:at] = buf[rng.randrange(len(buf)) :][: rng.randint(1, 5000)]
    elif kind == 3:
        at = rng.randrange(len(buf))
        del buf[at : at + rng.randint(1, 2000)]
    else:
        digits = [i for i in range(len(buf)) if 48 <= buf[i] <= 57]
        for i in rng.sample(digits, min(len(digits), 30)):
            buf[i] = rng.choice(b"0123456789")
    return bytes(buf)


def timestamp_query(rng: random.Random) -> bytes:
    query = tsp.TimeStampReq({
        "version": 1,
        "message_imprint": {"hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                            "hashed_message": rng.randbytes(32)},
        "nonce": rng.getrandbits(63), "cert_req": True,
    }).dump()  # fmt: skip
    return mutate(query, rng) if rng.random() < 0.5 else query


def fuzz(operation, url: str, key: str, failures: list[str], calls: list[int]):  # noqa: ANN001
    """A Hypothesis test of one operation that records every 5xx (/readyz may say 503)."""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def call(case) -> None:  # noqa: ANN001
        headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        response = case.call(base_url=url, headers=headers, timeout=60)
        calls.append(response.status_code)
        if response.status_code >= 500 and case.formatted_path != "/readyz":
            failures.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
            )

    return call


def test_the_openapi_operations_never_answer_5xx(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    pdfs = [p.read_bytes() for p in corpus_pdfs()[:8]]
    pdf_bodies = pdfs + [mutate(rng.choice(pdfs), rng) for _ in range(20)]
    schemathesis.openapi.media_type("application/pdf", st.sampled_from(pdf_bodies))
    schemathesis.openapi.media_type(
        "application/timestamp-query", st.builds(timestamp_query, st.randoms())
    )
    schemathesis.openapi.media_type("application/ocsp-request", st.binary(max_size=300))
    with kyso_serve(tmp_path) as (url, _proc, _log):
        his, auditor = api_key(tmp_path, "dev-his"), api_key(tmp_path, "dev-auditor")
        with urllib.request.urlopen(url + "/api/v1/openapi.json") as resp:
            schema = schemathesis.openapi.from_dict(json.load(resp))
        failures: list[str] = []
        calls: list[int] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            key = auditor if operation.path.startswith("/api/v1/audit") else his

            fuzz(operation, url, key, failures, calls)()
        assert not failures, "\n".join(failures[:10])
        assert len(calls) > 100, len(calls)
        print(f"schemathesis: {len(calls)} calls, statuses {sorted(set(calls))}")


def test_mutated_corpus_pdfs_are_signed_verified_or_refused_never_a_5xx(tmp_path: Path) -> None:
    rng = random.Random(1201)
    pdfs = [p.read_bytes() for p in corpus_pdfs()]
    with kyso_serve(tmp_path) as (url, _proc, _log):
        his = api_key(tmp_path, "dev-his")
        signed = post(url, "/api/v1/sign/pdf?key=lab-seal&level=B-B", pdfs[0], his)[1]
        assert isinstance(signed, bytes)
        sources = [*pdfs, signed]
        seen: dict[int, int] = {}
        for n in range(MUTATIONS):
            body = mutate(rng.choice(sources), rng)
            path = ("/api/v1/verify/pdf", "/api/v1/sign/pdf?key=lab-seal&level=B-B",
                    "/api/v1/sign/pdf?key=lab-seal&level=B-B&repair=true")[n % 3]  # fmt: skip
            status, answer = post(url, path, body, his)
            seen[status] = seen.get(status, 0) + 1
            assert status < 500, (path, status, answer)
    print(f"mutated PDFs: {dict(sorted(seen.items()))}")
