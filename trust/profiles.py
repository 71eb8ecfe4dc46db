"""Built-in trust profiles: sets of trust anchors shipped with kyso (``[trust] profile``).

``vn`` holds the Vietnam National Root CA certificates that kyso could verify from public
copies of the files NEAC publishes at rootca.gov.vn: today the SHA-256 root of 2014. Its
successor (G3) and the national TSA root are not shipped: no public copy of their bytes could
be checked (README, "The Vietnamese trust profile"). An operator adds them, and the public
CAs' intermediates (VNPT-CA, Viettel-CA, FPT-CA, BKAV-CA, ...), with ``[trust] roots``.

Each shipped file is pinned here by the SHA-256 of its certificate: a file that does not
match (a damaged or altered installation) stops the service rather than trusting it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from asn1crypto import pem

from kyso.errors import ConfigError


@dataclass(frozen=True)
class ShippedRoot:
    """A trust anchor shipped with kyso, and the SHA-256 of its DER the README prints."""

    file: str
    sha256: str
    name: str


PROFILES: dict[str, tuple[ShippedRoot, ...]] = {
    "vn": (
        ShippedRoot(
            "vietnam-national-root-ca-sha256-2014.pem",
            "bac8bf609ab420a8ee1780d74f4de5c7f7184959d2a7375b0a75e4c29f0908e7",
            "Vietnam National Root CA (SHA-256, 2014-04-15 to 2039-04-15)",
        ),
    ),
}


def profile_roots(name: str | None) -> list[bytes]:
    """The DER certificates of profile ``name`` (none for ``None``), each checked against
    its pinned fingerprint. Raises ConfigError for an unknown profile or a damaged file."""
    if name is None:
        return []
    if name not in PROFILES:
        raise ConfigError(f"[trust] profile must be one of {', '.join(PROFILES)}, not {name!r}")
    folder = resources.files("kyso.trust").joinpath("roots", name)
    ders = []
    for root in PROFILES[name]:
        data = folder.joinpath(root.file).read_bytes()
        der = pem.unarmor(data)[2] if pem.detect(data) else data
        if hashlib.sha256(der).hexdigest() != root.sha256:
            raise ConfigError(
                f"[trust] profile {name!r}: {root.file} does not match its pinned SHA-256 "
                f"{root.sha256}; the installation is damaged: reinstall kyso"
            )
        ders.append(der)
    return ders
