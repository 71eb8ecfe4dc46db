"""Write one section of BENCHMARKS.md, keeping the other sections as they are."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
FIRST = "Side by side (bench/run)"
INTRO = (
    "`bench/run` measures every figure of issue 13 side by side with the bare libraries and "
    "rewrites the first section; each `python bench/<name>.py` rewrites its own section.\n"
)


@dataclass
class Figure:
    """One figure of issue 13: kyso's number beside the bare library's, same run.

    ``ratio`` is kyso's over the bare library's, read against ``target`` ("<= 1.5",
    ">= 0.15"); ``met`` says whether it holds. ``profile`` says where the time went, for a
    figure that misses its target. A figure that is not ``held`` to a target is reported
    beside the others and counted neither met nor missed (``met`` then says only that the
    run was sound, e.g. that the writers made one chain).
    """

    name: str
    ours: str
    bare: str
    ratio: float
    target: str
    met: bool
    profile: str = ""
    held: bool = True

    @property
    def verdict(self) -> str:
        if not self.held:
            return "reported" if self.met else "**run unsound**"
        return "yes" if self.met else "**missed**"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, load average {load:.1f} at start")


def write_section(title: str, body: str, stamped: bool = True) -> None:
    """Replace (or add) ``## title`` in BENCHMARKS.md with ``body``; ``stamped``: dated, with
    the machine. "Side by side" (``bench/run``) comes first, the others after it."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = f"Measured {stamp} on {machine()}.\n\n" if stamped else ""
    section = f"## {title}\n\n{head}{body.strip()}\n"
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else (
        "# Benchmarks\n\n" + INTRO
    )
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text)
    elif title == FIRST and (first := re.search(r"^## ", text, re.M)):
        text = text[: first.start()] + section + "\n" + text[first.start() :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
