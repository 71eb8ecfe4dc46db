"""The text of a checkpoint: a C2SP tlog-checkpoint note body with a ``chain_head`` line.

::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>
    chain_head <entry hash of seq tree_size-1, lowercase hex>

each line ending in a newline (https://c2sp.org/tlog-checkpoint). The log key signs the
UTF-8 bytes of this text. For the empty log the chain head is 64 zeros, the ``prev_hash``
the first entry will carry.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHAIN_HEAD = "chain_head "


@dataclass(frozen=True)
class CheckpointBody:
    """The parsed lines of a checkpoint body."""

    origin: str
    tree_size: int
    root_hash: bytes
    chain_head: str


def checkpoint_body(origin: str, tree_size: int, root_hash: bytes, chain_head_hex: str) -> str:
    """The checkpoint text for a log ``origin`` at ``tree_size`` with its root and chain head."""
    _check_origin(origin)
    if isinstance(tree_size, bool) or not isinstance(tree_size, int) or tree_size < 0:
        raise ValueError("tree_size must be a non-negative integer")
    if len(root_hash) != 32:
        raise ValueError("root_hash must be 32 bytes (SHA-256)")
    if not _HEX64.fullmatch(chain_head_hex):
        raise ValueError("chain_head must be 64 lowercase hex digits")
    root = base64.b64encode(root_hash).decode("ascii")
    return f"{origin}\n{tree_size}\n{root}\n{_CHAIN_HEAD}{chain_head_hex}\n"


def parse_checkpoint_body(text: str) -> CheckpointBody:
    """Parse a checkpoint body, strictly; ``ValueError`` saying which line is wrong."""
    if not text.endswith("\n"):
        raise ValueError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) != 4:
        raise ValueError(
            f"checkpoint body must have 4 lines (origin, size, root, chain_head), not {len(lines)}"
        )
    origin, size_text, root_text, head_line = lines
    _check_origin(origin)
    if not _DECIMAL.fullmatch(size_text):
        raise ValueError(f"checkpoint line 2 must be the tree size in decimal, not {size_text!r}")
    root_hash = _decode_root(root_text)
    if not head_line.startswith(_CHAIN_HEAD) or not _HEX64.fullmatch(head_line[len(_CHAIN_HEAD) :]):
        raise ValueError("checkpoint line 4 must be 'chain_head ' and 64 lowercase hex digits")
    return CheckpointBody(origin, int(size_text), root_hash, head_line[len(_CHAIN_HEAD) :])


def _decode_root(text: str) -> bytes:
    """The 32-byte root hash of checkpoint line 3, which must be canonical base64."""
    try:
        root = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"checkpoint line 3 is not base64: {exc}") from exc
    # Only one text per hash: a body that decodes but does not re-encode the same is refused.
    if len(root) != 32 or base64.b64encode(root).decode("ascii") != text:
        raise ValueError("checkpoint line 3 must be the base64 of a 32-byte root hash")
    return root


def _check_origin(origin: str) -> None:
    """An origin is one non-empty line; C2SP recommends a schema-less URL."""
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise ValueError("checkpoint origin must be a non-empty single line")
