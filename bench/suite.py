"""Every figure of issue 13 side by side with the bare libraries, in one run: ``bench/run``.

    bench/run [--quick]

Starts ``kyso serve`` as production does (gunicorn, the default worker count, loopback, a
temporary data directory on SQLite) for the HTTP figures (:mod:`http_figures`), times the
offline verifier (:mod:`audit_verify`), and durable audit appends with 16 writers at once
on SQLite and on a throw-away PostgreSQL (:mod:`audit_append`): as threads of 2 worker
processes, the service's shape, and as 16 single-threaded processes. Then rewrites
BENCHMARKS.md: the section "Side by side (bench/run)" with the machine, the date, each
figure with its target, ratio and whether it is met, and for each miss a profile of where
the time went; and the section of the offline verifier. About 5 minutes on 2 cores;
``--quick`` runs smaller loads (a check that everything runs, not figures to keep).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import audit_append  # noqa: E402
import audit_verify  # noqa: E402
import http_figures  # noqa: E402
from pg import PostgresServer  # noqa: E402
from profiles import profile_call, sample  # noqa: E402
from report import Figure, write_section  # noqa: E402

WRITERS = 16
WORKERS = 2  # kyso serve's default on the 2-core machine of issue 13: one worker per core
APPENDS_TARGET = 5000


def machine() -> str:
    """CPU model, cores, RAM, Python, kernel and load: what the figures were measured on."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = "unknown RAM"
    if Path("/proc/meminfo").exists():
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f"{kib / 2**20:.1f} GiB RAM"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {cores} cores, {memory}; Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; load average {os.getloadavg()[0]:.1f} at start")


def appends(url: str, name: str, seconds: float) -> list[Figure]:
    """Durable audit appends/s with WRITERS writers at once for ``seconds``, beside bare
    one-row commits: as the service has them (threads of WORKERS processes, the figure held
    to the target; one worker is sampled meanwhile with py-spy, kept as the profile if the
    target is missed), and as WRITERS single-threaded processes (reported, not held to it:
    with one append in flight per process there is nothing to commit together, so no log
    can pass the bare one-row commit rate there)."""
    found: list[str] = []

    def spy(pids: list[int]) -> None:
        time.sleep(seconds / 4)
        found.append(sample(pids[0], seconds / 2))

    threads = WRITERS // WORKERS
    rate, one_chain = audit_append.many_writers(
        url, WORKERS, f"{seconds}s", during=spy, threads=threads
    )
    solo, solo_chain = audit_append.many_writers(url, WRITERS, f"{seconds}s")
    bare = audit_append.many_bare_writers(url, WRITERS, f"{seconds}s")
    figure = Figure(
        f"Durable audit appends, {WRITERS} writers ({WORKERS} processes x {threads} threads), {name}",
        f"{rate:,.0f}/s ({'one chain' if one_chain else 'CHAIN BROKEN'})",
        f"bare one-row commits, {WRITERS} writer processes {bare:,.0f}/s",
        rate / bare, f">= {APPENDS_TARGET:,}/s", rate >= APPENDS_TARGET and one_chain,
    )
    if not figure.met and found:
        alone = audit_append.grouping_apart(url, 1, seconds / 5)
        grouped = audit_append.grouping_apart(url, WRITERS, seconds / 5)
        figure.profile = "\n".join([
            f"The same database, writers as threads of this one process: 1 thread {alone[0]:,.0f}/s "
            f"({alone[1]:.1f} entries a commit, {alone[2]:.0f} us CPU an append); {WRITERS} threads "
            f"{grouped[0]:,.0f}/s ({grouped[1]:.1f} entries a commit, {grouped[2]:.0f} us CPU an append).",
            "A commit costs its statements and the disk's flush whatever it carries; group commit "
            "shares that among the threads of one process. With the writers split over "
            f"{WORKERS} processes, each commit carries one process's waiting appends and the "
            "processes take turns on the database lock. A writer process, idle threads included:",
            "",
            found[0],
        ])
    single = Figure(
        f"Durable audit appends, {WRITERS} single-threaded writer processes, {name} "
        "(one append in flight per process: nothing to commit together)",
        f"{solo:,.0f}/s ({'one chain' if solo_chain else 'CHAIN BROKEN'})",
        f"bare one-row commits, {WRITERS} writer processes {bare:,.0f}/s",
        solo / bare, f"none (not held to {APPENDS_TARGET:,}/s)", solo_chain, held=False,
    )
    return [figure, single]


def verifier(entries: int, runs: int) -> tuple[list[Figure], str]:
    """The two offline verifier figures, and the body of its own section."""
    timings = audit_verify.run_timings(entries, runs, slow_runs=2)
    figures = audit_verify.figures(timings)
    pairs = ((timings.ours, timings.plain, "plain loop"), (timings.reserialized, timings.reference, "reference loop"))
    for figure, (ours, bare, name), reserialized in zip(figures, pairs, (False, True), strict=True):
        if not figure.met:
            work = (ours[1] + ours[2]) / bare[1]
            figure.profile = (
                f"CPU: {ours[1]:.2f} s in the verifying process + {ours[2]:.2f} s in the forked "
                f"ones = {work:.1f} x the {name}'s {bare[1]:.2f} s; wall {ours[0]:.2f} s. The target "
                f"needs that work spread over {len(os.sched_getaffinity(0))} cores: with other "
                f"processes on them (load average {os.getloadavg()[0]:.1f} now) the wall time grows "
                "toward the total work. One process, cProfile:\n"
                + profile_verifier(min(entries, 50_000), reserialized)
            )
    return figures, audit_verify.section(timings)


def profile_verifier(entries: int, reserialized: bool) -> str:
    """cProfile of the verifier reading an export in this process alone."""
    from kyso.audit.offline.verify import verify_export

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        audit_verify.build_export(path, entries)
        if reserialized:
            audit_verify.reserialize(path, path.with_suffix(".again"))
            path = path.with_suffix(".again")

        def run() -> None:
            with path.open("rb") as f:
                verify_export(f, workers=1)

        return profile_call(run)


def table(figures: list[Figure]) -> str:
    rows = ["| figure | kyso | bare library, same run | ratio | target | met |",
            "|---|---|---|---|---|---|"]
    for f in figures:
        rows.append(f"| {f.name} | {f.ours} | {f.bare} | {f.ratio:.2f} | {f.target} "
                    f"| {f.verdict} |")
    return "\n".join(rows)


def profiles(figures: list[Figure]) -> str:
    parts = []
    for f in figures:
        if not f.met and f.profile:
            parts += [f"### Why: {f.name}", "", "```", f.profile, "```", ""]
    return "\n".join(parts)


def timed(label: str, step: Callable[[], list[Figure]], log: list[str]) -> list[Figure]:
    start = time.perf_counter()
    figures = step()
    log.append(f"{label} {time.perf_counter() - start:.0f} s")
    for f in figures:
        print(f"{f.name}: {f.ours} | {f.bare} | ratio {f.ratio:.2f} | {f.target} | "
              f"{f.verdict}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Every figure of issue 13 beside the bare libraries, in one run."
    )
    parser.add_argument("--quick", action="store_true", help="small loads: check that it runs")
    args = parser.parse_args()
    quick = args.quick
    started, where = time.perf_counter(), machine()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    steps: list[str] = []
    figures: list[Figure] = []
    data_dir = Path(tempfile.mkdtemp(prefix="kyso-bench-"))
    try:
        figures += timed("HTTP", lambda: http_figures.measure(
            data_dir / "serve", seconds=3 if quick else 10, n=5 if quick else 30), steps)
        verifier_section = ""

        def verify_step() -> list[Figure]:
            nonlocal verifier_section
            found, verifier_section = verifier(20_000 if quick else 200_000, 1 if quick else 3)
            return found

        figures += timed("offline verifier", verify_step, steps)
        each = 3.0 if quick else 10.0
        figures += timed("appends, SQLite", lambda: appends(
            f"sqlite:///{data_dir}/appends.sqlite3", "SQLite (WAL, synchronous=FULL)", each
        ), steps)
        with PostgresServer() as pg:
            figures += timed("appends, PostgreSQL", lambda: appends(
                pg.create_database(), "PostgreSQL 15 (fsync on)", each
            ), steps)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    total = time.perf_counter() - started
    held = [f for f in figures if f.held]
    missed = [f.name for f in figures if not f.met]
    body = "\n".join([
        f"Measured {stamp} on {where}, {os.getloadavg()[0]:.1f} at the end (other processes "
        f"share these cores: read the ratios with the load). `bench/run`{' --quick' if quick else ''} "
        f"took {total / 60:.1f} minutes ({', '.join(steps)}).",
        "",
        "The service runs as `kyso serve` runs in production (the front, gunicorn with its default of "
        "one worker of four threads per core, SQLite in a temporary data directory), on loopback, with "
        "the clients on the same machine; each bare library runs in this process, in the same "
        "run. Ratio is kyso's over the bare library's (time or rate, as the target says).",
        "",
        table(figures),
        "",
        f"{len(held) - len([f for f in held if not f.met])} of {len(held)} targets met"
        f" ({len(figures) - len(held)} more figures reported beside them)."
        + (f" Missed: {'; '.join(missed)}. Where their time went (py-spy samples of the "
           "server's worker or of a writer, idle threads included, so waits on locks, the disk "
           "and sockets show; `total` is the share of samples with the function on the stack, "
           "`self` the share in it; or cProfile of the verifier in one process):" if missed else ""),
        "",
        profiles(figures),
    ])
    write_section("Side by side (bench/run)", body, stamped=False)
    if verifier_section and not quick:
        head = f"Measured {stamp} by `bench/run` (its section above says on what, under which load)."
        write_section("Audit log offline verifier", f"{head}\n\n{verifier_section}", stamped=False)
    print(f"bench/run: {total:.0f} s; BENCHMARKS.md rewritten")


if __name__ == "__main__":
    main()
