"""Bounded work per request, against a real ``kyso serve``: memory measured on its worker,
time on the clock, every loop bounded."""

from __future__ import annotations

import time
from pathlib import Path

from hostile import many_objects, many_signature_fields, object_stream_bomb, rss_mb, workers_of
from serving import api_key, config_env, kyso_serve, post


def test_memory_returns_to_its_level_after_each_verification_of_a_many_object_pdf(
    tmp_path: Path,
) -> None:
    pdf = many_objects(150_000)  # 7 MB; before: about 36 MB more in the worker after each call
    with kyso_serve(tmp_path, "--workers", "1") as (url, proc, _log):  # one worker to measure
        auditor = api_key(tmp_path, "dev-auditor")
        (worker,) = workers_of(proc.pid)
        status, _ = post(url, "/api/v1/verify/pdf", pdf, auditor)
        assert status == 200
        after_first = rss_mb(worker)
        for _ in range(8):
            status, _ = post(url, "/api/v1/verify/pdf", pdf, auditor)
            assert status == 200
        after_nine = rss_mb(worker)
    print(f"worker RSS after 1 verification {after_first:.0f} MB, after 9: {after_nine:.0f} MB")
    assert after_nine - after_first < 40, (after_first, after_nine)


def test_pdfs_over_the_caps_are_refused_quickly_with_the_cap_named(tmp_path: Path) -> None:
    with kyso_serve(tmp_path, "--workers", "1") as (url, proc, _log):  # one worker to measure
        auditor = api_key(tmp_path, "dev-auditor")
        his = api_key(tmp_path, "dev-his")
        (worker,) = workers_of(proc.pid)
        before = rss_mb(worker)
        cases = [
            ("/api/v1/verify/pdf", many_objects(250_000), auditor, 400, "limits.max_pdf_objects"),
            (
                "/api/v1/sign/pdf?key=hospital-seal&level=B-B",
                many_objects(250_000),
                his,
                400,
                "limits.max_pdf_objects",
            ),
            (
                "/api/v1/verify/pdf",
                many_signature_fields(50_000),
                auditor,
                400,
                "limits.max_signature_fields",
            ),
            (
                "/page/verify",
                many_signature_fields(50_000),
                auditor,
                400,
                "limits.max_signature_fields",
            ),
            ("/api/v1/verify/pdf", object_stream_bomb(), auditor, 413, "limits.max_inflated_bytes"),
            (
                "/api/v1/sign/pdf?key=hospital-seal&level=B-B",
                object_stream_bomb(),
                his,
                413,
                "limits.max_inflated_bytes",
            ),
        ]
        for path, body, key, status, cap in cases:
            started = time.monotonic()
            got, problem = post(url, path, body, key)
            took = time.monotonic() - started
            print(f"{path} {len(body)} bytes: {got} in {took:.2f} s")
            assert (got, problem["code"]) == (
                status,
                "invalid_pdf" if status == 400 else "payload_too_large",
            ), problem
            assert cap in problem["detail"]
            assert took < 3, (path, took)  # 50,000 signature fields took 11 s to verify
        grown = rss_mb(worker) - before
    assert grown < 80, grown


def test_a_damaged_bomb_is_not_rebuilt_without_repair_and_is_rebuilt_apart_with_it(
    tmp_path: Path,
) -> None:
    bomb = object_stream_bomb(broken_xref=True)  # 4 kB; rebuilt in the worker: 36 s and 4 GB
    env = config_env(tmp_path, "[limits]\nrepair_memory_bytes = 268435456\nrepair_seconds = 20\n")
    with kyso_serve(tmp_path, "--workers", "1", env=env) as (url, proc, _log):
        his = api_key(tmp_path, "dev-his")
        (worker,) = workers_of(proc.pid)
        before = rss_mb(worker)
        started = time.monotonic()
        status, problem = post(url, "/api/v1/sign/pdf?key=hospital-seal&level=B-B", bomb, his)
        assert status == 400 and "repair=true" in problem["detail"], problem
        assert time.monotonic() - started < 2
        started = time.monotonic()
        status, problem = post(
            url, "/api/v1/sign/pdf?key=hospital-seal&level=B-B&repair=true", bomb, his
        )
        took = time.monotonic() - started
        print(
            f"rebuild refused with {status} {problem['code']} in {took:.1f} s: {problem['detail'][:120]}"
        )
        assert status in (400, 413), problem
        assert took < 45
        assert rss_mb(worker) - before < 50
