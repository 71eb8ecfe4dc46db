"""The rebuild of a damaged PDF, run apart: a child process with limits.

qpdf inflates what a damaged file holds while it recovers it, and has no limit of its own:
a few kB of stacked Flate in an object stream become gigabytes. So the rebuild runs in a
child process (``python -m kyso.signer.repair.isolated``) whose address space and CPU time
are capped (``RLIMIT_AS``, ``RLIMIT_CPU``) and which the caller waits for only so long; a
child that runs out of any of them is a refusal of the file, never a worker lost. The
child is a fresh interpreter (not a fork of a threaded worker), reads the PDF on its
standard input and answers on its standard output.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys

from kyso.errors import EncryptedPdf, InvalidPdf, KysoError
from kyso.signer.bounds import InflatesTooMuch, OverLimit, PdfBounds

_OK, _REFUSED = b"OK\n", b"NO\n"
_OUT_OF_MEMORY = 3
_ERRORS: dict[str, type[KysoError]] = {"invalid_pdf": InvalidPdf, "encrypted_pdf": EncryptedPdf}


def repair_in_child(data: bytes, bounds: PdfBounds) -> bytes:
    """A sound rebuild of ``data`` (see :func:`kyso.signer.repair.rebuild.repair_pdf`),
    made in a child process bounded by ``bounds.repair_memory_bytes`` of memory and
    ``bounds.repair_seconds`` of CPU time."""
    command = [
        sys.executable, "-m", "kyso.signer.repair.isolated",
        str(bounds.repair_memory_bytes), str(bounds.repair_seconds),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            input=data,
            capture_output=True,
            timeout=bounds.repair_seconds * 2 + 10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _too_slow(bounds) from None
    if done.returncode == 0 and done.stdout.startswith(_OK):
        return done.stdout[len(_OK) :]
    if done.returncode == 0 and done.stdout.startswith(_REFUSED):
        problem = json.loads(done.stdout[len(_REFUSED) :])
        error = _ERRORS.get(problem["code"], InvalidPdf)
        raise error(problem["detail"], **problem.get("extra", {}))
    if done.returncode == _OUT_OF_MEMORY or done.returncode == -signal.SIGSEGV:
        raise InflatesTooMuch(
            f"the PDF needs more than {bounds.repair_memory_bytes} bytes of memory to rebuild "
            "(limits.repair_memory_bytes)"
        )
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _too_slow(bounds)
    raise InvalidPdf("the PDF cannot be rebuilt: the rebuild failed")


def _too_slow(bounds: PdfBounds) -> OverLimit:
    return OverLimit(
        f"the PDF takes more than {bounds.repair_seconds} s to rebuild (limits.repair_seconds)"
    )


def _vm_size() -> int:
    """This process's address space now (bytes)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(memory: int, seconds: int) -> int:
    from kyso.signer.repair.rebuild import repair_pdf

    data = sys.stdin.buffer.read()
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    limit = _vm_size() + memory  # on top of the interpreter, its libraries and the input
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = sys.stdout.buffer
    try:
        fixed = repair_pdf(data)
    except MemoryError:
        return _OUT_OF_MEMORY
    except KysoError as exc:
        out.write(
            _REFUSED
            + json.dumps({"code": exc.code, "detail": exc.detail, "extra": exc.extra}).encode()
        )
        return 0
    except Exception as exc:  # qpdf's own out-of-memory comes as its error type
        if "bad_alloc" in str(exc) or "memory" in str(exc).lower():
            return _OUT_OF_MEMORY
        raise
    out.write(_OK + fixed)
    return 0


if __name__ == "__main__":
    sys.exit(_child(int(sys.argv[1]), int(sys.argv[2])))
