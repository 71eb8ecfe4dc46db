"""SoftHSM tokens for the PKCS#11 key provider tests.

Each token holds an imported RSA-2048 key, an EC P-256 key generated on the token and an EC key
that asks for the PIN at every signature, each with a certificate from a throw-away CA
(:func:`softhsm.token_with_keys`). ``kyso-hsm`` serves most tests; ``kyso-spare`` gets pulled out;
``kyso-pin`` is never logged in to except by the wrong-PIN test; ``kyso-clinician`` serves
``sign_many``, which logs in and out by itself.
"""

from __future__ import annotations

import pytest
import softhsm

PIN = "user-pin-1234"


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> softhsm.Hsm:
    """SoftHSM with the tokens ``kyso-hsm``, ``kyso-spare``, ``kyso-pin``, ``kyso-clinician``."""
    instance = softhsm.process_softhsm(tmp_path_factory.mktemp("softhsm"))
    ca = softhsm.TestCa.create()
    tokens = {
        label: softhsm.token_with_keys(ca, label, PIN, prefix)
        for label, prefix in (
            ("kyso-hsm", "seal"),
            ("kyso-spare", "spare"),
            ("kyso-pin", "pin"),
            ("kyso-clinician", "dr"),
        )
    }
    return softhsm.Hsm(module=instance.module, ca=ca, tokens=tokens)
