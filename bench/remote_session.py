"""Remote signing sessions: kyso's own time for a session of N PDFs under one authorisation.

    python bench/remote_session.py [--documents 50] [--runs 3]

The HIS path through the Flask app: ``POST /api/v1/signing-sessions`` with N PDFs and a
``signer``, then ``GET /api/v1/signing-sessions/<id>`` until it is completed (the poller is
stopped, so the reads do the work and the time is theirs). Providers, on loopback, in this
process: certomancer-csc-dummy (one ``credentials/authorize`` and one ``signatures/signHash``
for the N hashes) and the NEAC-style test gateway (the clinician confirms at once; the
signatures come with the status answer). Every provider call is timed where kyso makes it;
kyso's own time is the HIS's wall time minus those calls: reading the request, checking the
clinician's certificate (path and revocation), preparing N PDFs, the audit entries, finishing
N signatures (and N timestamps from the built-in TSA at B-T) and the answer.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from csc_server import start_csc_service  # noqa: E402
from neac_server import NeacGateway  # noqa: E402
from remote_support import AN, open_service, remote_config  # noqa: E402
from report import write_section  # noqa: E402

from kyso.certs.devpki import dev_pki_dir  # noqa: E402

CORPUS = HERE.parent / "tests" / "data" / "corpus"
PDF = (CORPUS / "pdf/002-trivial-libre-office-writer/002-trivial-libre-office-writer.pdf").read_bytes()
TARGET_SECONDS = 2.0


def thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds a thread of this process has used."""
    if thread is None or thread.ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


class ProviderClock:
    """Time spent inside provider calls (wrapped where kyso calls them)."""

    def __init__(self, threads: list[threading.Thread | None]) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.threads = threads  # where the providers serve, in this process

    def wrap(self, provider: Any) -> None:
        for name in ("certificate", "request_signatures", "status"):
            setattr(provider, name, self._timed(getattr(provider, name)))

    def _timed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
                self.calls += 1

        return timed


def one_session(service: Any, provider: str, user_id: str, count: int, level: str,
                gateway: NeacGateway, clock: ProviderClock) -> tuple[float, float, int, float]:
    """(HIS wall seconds, provider seconds, provider calls, kyso's CPU seconds) of one session;
    the CPU is this process's, less the provider threads' (they serve in this process)."""
    pdf = base64.b64encode(PDF).decode()
    documents = [{"record_id": f"bench/{i}", "name": f"Hồ sơ {i}", "pdf": pdf} for i in range(count)]
    body = {"signer": {"provider": provider, "user_id": user_id}, "documents": documents, "level": level}
    clock.seconds, clock.calls = 0.0, 0
    cpu = time.process_time() - sum(thread_cpu(t) for t in clock.threads)
    began = time.perf_counter()
    resp = service.client.post("/api/v1/signing-sessions", json=body, headers=service.auth())
    assert resp.status_code == 201, resp.get_data(as_text=True)
    session = resp.json
    if provider == "smartca":
        paused = time.perf_counter()
        gateway.confirm(session["transaction_id"])  # the clinician's thumb, not kyso's time
        began += time.perf_counter() - paused
    while True:
        answer = service.client.get(f"/api/v1/signing-sessions/{session['id']}", headers=service.auth()).json
        if answer["status"] != "pending":
            break
    wall = time.perf_counter() - began
    cpu = time.process_time() - sum(thread_cpu(t) for t in clock.threads) - cpu
    assert answer["status"] == "completed" and len(answer["documents"]) == count, answer.get("error")
    return wall, clock.seconds, clock.calls, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csc = start_csc_service(root / "csc", multisign=max(100, args.documents))
        gateway = NeacGateway(dev_pki_dir()).start(threaded=False)
        config = remote_config(root / "kyso", gateway, csc, dev_pki_dir() / "root-ca.cert.pem",
                               timeout=120.0, session_minutes=30.0)
        service = open_service(config)
        service.client.application.extensions["kyso.remote_poller"].stop()  # the reads do the work
        clock = ProviderClock([csc.thread, gateway.thread])
        for name in ("smartca", "cloudca"):
            clock.wrap(service.kyso.remote_providers.get(name))
        rows = []
        try:
            for provider, user, label in (("cloudca", csc.credential("dr-csc"), "CSC (RSA-2048), signHash"),
                                          ("smartca", AN, "NEAC gateway (RSA-2048), status poll")):
                for level in ("B-B", "B-T"):
                    one_session(service, provider, user, 2, level, gateway, clock)  # warm up
                    runs = [one_session(service, provider, user, args.documents, level, gateway, clock)
                            for _ in range(args.runs)]
                    own = [wall - spent for wall, spent, _, _ in runs]
                    best = min(range(len(runs)), key=lambda i: own[i])
                    wall, spent, calls, cpu = runs[best]
                    rows.append((label, level, wall, spent, calls, own[best], statistics.median(own),
                                 min(r[3] for r in runs)))
                    print(f"{label} {level}: wall {wall:.2f} s, provider {spent:.2f} s in {calls} calls, "
                          f"kyso {own[best]:.2f} s (median {statistics.median(own):.2f} s), "
                          f"kyso CPU {cpu:.2f} s", flush=True)
        finally:
            service.kyso.close()
            gateway.stop()
            csc.stop()
    lines = [
        f"A session of {args.documents} PDFs (the 14 KB LibreOffice corpus file) under one "
        f"authorisation, through the Flask app; best of {args.runs} runs after a warm-up. "
        "`python bench/remote_session.py`.",
        "",
        "| provider | level | HIS wall s | provider calls s (n) | kyso's own s (best) | median | kyso CPU s | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, level, wall, spent, calls, own, median, cpu in rows:
        verdict = "met" if own <= TARGET_SECONDS else "missed"
        lines.append(f"| {label} | {level} | {wall:.2f} | {spent:.2f} ({calls}) | {own:.2f} | {median:.2f} "
                     f"| {cpu:.2f} | ≤ {TARGET_SECONDS:g} s: {verdict} |")
    lines += [
        "",
        "kyso's own time is the HIS's wall time (POST, then GET until completed) minus the time "
        "spent inside the provider calls, measured where kyso makes them (the providers run in "
        "this process, so their signing counts as theirs). It covers parsing and base64 of the "
        "request, the clinician certificate's path and revocation check, preparing every PDF "
        "(placeholder, signed attributes), the session's database rows and audit entries, checking "
        "every returned signature, embedding it (B-T: a timestamp from the built-in TSA, in "
        "process, per document), the record registry and the answer with every signed PDF. "
        "kyso CPU is this process's CPU time over the session less that of the threads the "
        "providers serve in: on a shared, loaded machine the wall time waits for the cores, the "
        "CPU time does not.",
        "",
        "The documents of a session share the CMS size estimate and the signed attributes (`signer/external.py` `PdfPreparation`): preparing a PDF costs about 4 ms of CPU instead of 20, and 50 PDFs of the first run of this benchmark took 2.7 to 4.0 s of kyso's own time.",
    ]
    write_section("Remote signing sessions", "\n".join(lines))


if __name__ == "__main__":
    main()
