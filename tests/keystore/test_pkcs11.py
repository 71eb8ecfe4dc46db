"""The PKCS#11 key provider against real SoftHSM2 tokens."""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest
import softhsm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, Mechanism
from pkcs11.exceptions import AttributeSensitive, GeneralError
from softhsm import Hsm

from kyso.errors import TokenUnavailable
from kyso.keystore import pkcs11_session
from kyso.keystore.pkcs11 import Pkcs11Key, signing_plan
from kyso.keystore.pkcs11_tokens import list_tokens, sign_many

CANARY_PIN = "canary-PIN-7f3a9"


def _key(hsm: Hsm, token: str, key_label: str, pin: str | None = None, **kwargs) -> Pkcs11Key:
    secret = hsm.tokens[token].pin if pin is None else pin
    return Pkcs11Key(f"{token}/{key_label}", hsm.module, token, key_label, lambda: secret, **kwargs)


def _verify(cert: x509.Certificate, data: bytes, signature: bytes, scheme: str) -> None:
    """Raise InvalidSignature unless ``signature`` is a SHA-256 ``scheme`` signature of data."""
    public_key = cert.public_key()
    if scheme == "ecdsa":
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return
    assert isinstance(public_key, rsa.RSAPublicKey)
    pad = (
        padding.PKCS1v15()
        if scheme == "pkcs1v15"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    )
    public_key.verify(signature, data, pad, hashes.SHA256())


def _cert(hsm: Hsm, token: str, key_label: str) -> x509.Certificate:
    return hsm.tokens[token].certificates[key_label]


class CountingPin:
    """A PIN source that counts how often it is asked, and fails the first ``failures`` asks
    with a PKCS#11 general error, as SoftHSM does while another process logs in."""

    def __init__(self, pin: str, failures: int = 0) -> None:
        self.pin = pin
        self.failures = failures
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        if self.failures:
            self.failures -= 1
            raise GeneralError()
        return self.pin


def _logged_out(hsm: Hsm, token: str) -> None:
    """Close this process's session on ``token``: the next token call logs in again."""
    with pkcs11_session.process_lock():
        pkcs11_session.drop_session(hsm.module, token)


def test_imported_rsa_key_signs_pkcs1v15_and_pss_that_verify_with_its_certificate(hsm: Hsm):
    key = _key(hsm, "kyso-hsm", "seal-rsa")
    for scheme in ("pkcs1v15", "pss"):
        data = f"discharge letter, {scheme}".encode()
        _verify(_cert(hsm, "kyso-hsm", "seal-rsa"), data, key.sign(data, scheme), scheme)


def test_ec_key_made_on_the_token_signs_der_ecdsa_that_verifies_with_its_certificate(hsm: Hsm):
    key = _key(hsm, "kyso-hsm", "seal-ec")
    signature = key.sign(b"lab result", "ecdsa")
    assert signature[0] == 0x30  # DER SEQUENCE, not raw r||s
    _verify(_cert(hsm, "kyso-hsm", "seal-ec"), b"lab result", signature, "ecdsa")


def test_key_info_is_read_from_the_certificate_on_the_token(hsm: Hsm):
    rsa_info = _key(hsm, "kyso-hsm", "seal-rsa").info
    ec_info = _key(hsm, "kyso-hsm", "seal-ec").info
    assert (rsa_info.kind, rsa_info.algorithm, rsa_info.jws_alg) == ("pkcs11", "RSA-2048", "PS256")
    assert rsa_info.default_scheme == "pss"  # Circular 15/2025: RSASSA-PSS by default
    v15_info = _key(hsm, "kyso-hsm", "seal-rsa", rsa_scheme="pkcs1v15").info
    assert (v15_info.jws_alg, v15_info.default_scheme) == ("RS256", "pkcs1v15")
    assert (ec_info.algorithm, ec_info.default_scheme) == ("EC-P256", "ecdsa")
    assert "seal EC" in ec_info.subject
    der = _cert(hsm, "kyso-hsm", "seal-ec").public_bytes(serialization.Encoding.DER)
    assert ec_info.certificate.dump() == der


def test_a_certificate_file_of_another_key_is_refused(hsm: Hsm, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(_cert(hsm, "kyso-spare", "spare-ec").public_bytes(serialization.Encoding.PEM))
    with pytest.raises(TokenUnavailable, match="does not belong to this key"):
        _key(hsm, "kyso-hsm", "seal-ec", cert_file=other).info  # noqa: B018


def test_key_made_on_the_token_is_sensitive_and_never_extractable(hsm: Hsm):
    access = softhsm.private_key_access("kyso-hsm", hsm.tokens["kyso-hsm"].pin, "seal-ec")
    assert "never extractable" in access and "always sensitive" in access
    assert "local" in access  # generated on the token, not imported
    key = _key(hsm, "kyso-hsm", "seal-ec")
    key.check()
    with pkcs11_session.process_lock():
        opened = pkcs11_session.token_session(hsm.module, "kyso-hsm", lambda: "unused: logged in")
        private = pkcs11_session.find_private_key(opened.session, "seal-ec")
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.SENSITIVE] is True
        with pytest.raises(AttributeSensitive):
            private[Attribute.VALUE]


def test_hashing_here_gives_the_same_valid_signatures_when_the_token_cannot_hash(hsm: Hsm):
    raw_only = {Mechanism.RSA_PKCS, Mechanism.RSA_PKCS_PSS}
    with pkcs11_session.process_lock():
        opened = pkcs11_session.token_session(
            hsm.module, "kyso-hsm", lambda: hsm.tokens["kyso-hsm"].pin
        )
        private = pkcs11_session.find_private_key(opened.session, "seal-rsa")
        for scheme in ("pkcs1v15", "pss"):
            plan = signing_plan("rsa", scheme, b"x-ray report", raw_only)
            assert plan.mechanism in raw_only
            signature = private.sign(
                plan.message, mechanism=plan.mechanism, mechanism_param=plan.param
            )
            _verify(_cert(hsm, "kyso-hsm", "seal-rsa"), b"x-ray report", signature, scheme)


def test_a_scheme_that_does_not_fit_the_key_is_refused(hsm: Hsm):
    with pytest.raises(ValueError, match="does not apply"):
        _key(hsm, "kyso-hsm", "seal-ec").sign(b"x", "pss")


def test_eight_threads_signing_25_times_with_both_keys_all_verify(hsm: Hsm):
    keys = [_key(hsm, "kyso-hsm", "seal-rsa"), _key(hsm, "kyso-hsm", "seal-ec")]
    start = threading.Barrier(8)

    def work(thread: int) -> list[tuple[Pkcs11Key, bytes, str, bytes]]:
        start.wait()
        done = []
        for n in range(25):
            key = keys[n % 2]
            scheme = ("pkcs1v15", "pss")[thread % 2] if key.key_label.endswith("rsa") else "ecdsa"
            data = f"thread {thread} signature {n}".encode()
            done.append((key, data, scheme, key.sign(data, scheme)))
        return done

    with ThreadPoolExecutor(8) as pool:
        results = [item for batch in pool.map(work, range(8)) for item in batch]
    assert len(results) == 200
    for key, data, scheme, signature in results:
        _verify(_cert(hsm, "kyso-hsm", key.key_label), data, signature, scheme)


def _specs(hsm: Hsm) -> list[softhsm.KeySpec]:
    pin = hsm.tokens["kyso-hsm"].pin
    return [
        (f"kyso-hsm/{label}", hsm.module, "kyso-hsm", label, pin)
        for label in ("seal-rsa", "seal-ec")
    ]


def _verify_worker_results(hsm: Hsm, results: list, workers: int, count: int) -> None:
    signed = [item for batch in results for item in batch]
    assert len(signed) == workers * count * 2
    assert len({pid for _, pid, _, _ in signed}) == workers
    for alias, _, data, signature in signed:
        label = alias.split("/")[1]
        _verify(
            _cert(hsm, "kyso-hsm", label),
            data,
            signature,
            "ecdsa" if label.endswith("ec") else "pss",  # the default scheme of RSA keys
        )


def test_forked_workers_of_four_threads_open_their_own_session_and_the_parent_keeps_its_own(
    hsm: Hsm,
):
    keys = [_key(hsm, "kyso-hsm", "seal-rsa"), _key(hsm, "kyso-hsm", "seal-ec")]
    for key in keys:  # the parent is logged in and holds handles when it forks
        key.sign(b"before fork", key.info.default_scheme)
    softhsm.INHERITED_KEYS[:] = keys
    with multiprocessing.get_context("fork").Pool(3) as pool:
        results = pool.starmap(softhsm.sign_in_worker, [(None, 5, 4)] * 3)
    _verify_worker_results(hsm, results, workers=3, count=5 * 4)
    for key in keys:
        data = b"after the children are gone"
        _verify(
            _cert(hsm, "kyso-hsm", key.key_label),
            data,
            key.sign(data, key.info.default_scheme),
            key.info.default_scheme,
        )


def test_a_forked_worker_logs_in_by_itself_instead_of_inheriting_the_parents_login(hsm: Hsm):
    pin = {"value": hsm.tokens["kyso-hsm"].pin}
    key = Pkcs11Key("inherited", hsm.module, "kyso-hsm", "seal-ec", lambda: pin["value"])
    key.sign(b"the parent is logged in", "ecdsa")
    context = multiprocessing.get_context("fork")
    answers = context.Queue()

    def child() -> None:
        pin["value"] = CANARY_PIN  # a login of its own must fail; an inherited one would not
        try:
            key.sign(b"the child", "ecdsa")
            answers.put("signed with the parent's login")
        except TokenUnavailable as exc:
            answers.put(str(exc))

    worker = context.Process(target=child)
    worker.start()
    answer = answers.get(timeout=60)
    worker.join()
    assert answer == "key alias 'inherited': token unavailable (wrong PIN)"
    key.sign(b"the parent is still logged in", "ecdsa")


def test_spawned_workers_of_four_threads_sign_at_the_same_time(hsm: Hsm):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(softhsm.sign_in_worker, [(_specs(hsm), 5, 4)] * 2)
    _verify_worker_results(hsm, results, workers=2, count=5 * 4)


def _shows_no_canary(error: BaseException) -> None:
    text = "".join(traceback.format_exception(error)) + repr(error.args) + repr(error.__dict__)
    assert CANARY_PIN not in text


def test_wrong_pin_is_unavailable_never_shown_never_retried_and_a_fixed_pin_recovers(hsm: Hsm):
    pin = {"value": CANARY_PIN}
    key = Pkcs11Key("pin-seal", hsm.module, "kyso-pin", "pin-ec", lambda: pin["value"])
    with pytest.raises(
        TokenUnavailable, match=r"key alias 'pin-seal': token unavailable \(wrong PIN\)"
    ) as first:
        key.sign(b"x", "ecdsa")
    _shows_no_canary(first.value)
    with pytest.raises(TokenUnavailable, match="not tried again") as second:
        key.check()
    _shows_no_canary(second.value)
    pin["value"] = hsm.tokens["kyso-pin"].pin
    key.check()
    _verify(_cert(hsm, "kyso-pin", "pin-ec"), b"x", key.sign(b"x", "ecdsa"), "ecdsa")


def test_repr_and_str_of_a_key_never_show_the_pin(dev_tokens):
    # The canary is the real PIN of kyso-api: the key logs in with it, whatever ran before.
    assert dev_tokens.canary_pin == CANARY_PIN
    key = Pkcs11Key("canary", dev_tokens.module, "kyso-api", "hsm-ec", lambda: CANARY_PIN)
    for text in (repr(key), str(key), repr(vars(key)), repr(key.info)):
        assert CANARY_PIN not in text
    assert repr(key).startswith("Pkcs11Key(alias='canary'")


def test_a_missing_token_label_is_unavailable_for_that_key_only(hsm: Hsm):
    missing = Pkcs11Key("ghost", hsm.module, "no-such-token", "seal-ec", lambda: CANARY_PIN)
    with pytest.raises(TokenUnavailable, match="'ghost'.*no token labelled 'no-such-token'"):
        missing.check()
    _key(hsm, "kyso-hsm", "seal-ec").check()


def test_a_token_pulled_out_is_unavailable_and_recovers_when_put_back(hsm: Hsm, monkeypatch):
    monkeypatch.setattr(pkcs11_session, "REINIT_BACKOFF_SECONDS", 0.0)
    spare = _key(hsm, "kyso-spare", "spare-ec")
    seal = _key(hsm, "kyso-hsm", "seal-rsa")
    spare.sign(b"before", "ecdsa")
    with softhsm.token_pulled_out(hsm.tokens["kyso-spare"].directory):
        with pytest.raises(TokenUnavailable, match="'kyso-spare/spare-ec': token unavailable"):
            spare.sign(b"while out", "ecdsa")
        with pytest.raises(TokenUnavailable, match="no token labelled 'kyso-spare'"):
            spare.check()
        seal.sign(b"the other token keeps working", "pkcs1v15")
    data = b"after it is back"
    _verify(_cert(hsm, "kyso-spare", "spare-ec"), data, spare.sign(data, "ecdsa"), "ecdsa")
    seal.sign(b"and the other token still works", "pkcs1v15")


def test_a_token_that_stays_missing_is_not_looked_for_again_within_the_backoff(
    hsm: Hsm, monkeypatch
):
    spare = _key(hsm, "kyso-spare", "spare-rsa")
    spare.sign(b"before", "pkcs1v15")
    with softhsm.token_pulled_out(hsm.tokens["kyso-spare"].directory):
        with pytest.raises(TokenUnavailable, match="no token labelled 'kyso-spare'"):
            spare.sign(b"while out: the module re-reads its slots in vain", "pkcs1v15")
    with pytest.raises(TokenUnavailable, match="no token labelled 'kyso-spare'"):
        spare.sign(b"back, but within the backoff the module is left alone", "pkcs1v15")
    monkeypatch.setattr(pkcs11_session, "REINIT_BACKOFF_SECONDS", 0.0)
    spare.sign(b"after the backoff it is found", "pkcs1v15")


def test_a_closed_key_is_unavailable(hsm: Hsm):
    key = _key(hsm, "kyso-hsm", "seal-ec")
    key.close()
    with pytest.raises(TokenUnavailable, match="closed"):
        key.sign(b"x", "ecdsa")


def test_list_tokens_shows_labels_and_certificate_subjects_without_a_pin(hsm: Hsm):
    tokens = {
        entry["token_label"]: entry for entry in list_tokens(hsm.module) if "token_label" in entry
    }
    assert {"kyso-hsm", "kyso-spare", "kyso-pin", "kyso-clinician"} <= set(tokens)
    clinician = tokens["kyso-clinician"]
    assert clinician["model"].startswith("SoftHSM")
    assert "TOKEN_INITIALIZED" in clinician["flags"] and "LOGIN_REQUIRED" in clinician["flags"]
    subjects = {cert["label"]: cert["subject"] for cert in clinician["certificates"]}
    assert "dr RSA" in subjects["dr-rsa"] and "dr EC" in subjects["dr-ec"]
    assert {cert["id"] for cert in clinician["certificates"]} == {"01", "02", "03"}
    assert sorted(key["label"] for key in clinician["public_keys"]) == ["dr-ec", "dr-qes"]
    assert clinician["private_keys"] == []  # hidden until someone logs in


def test_sign_many_signs_a_batch_under_one_login_with_raw_ecdsa(hsm: Hsm):
    items = [(b"pdf one", "pkcs1v15"), (b"pdf two", "pss"), (b"json", "pkcs1v15")]
    pin = hsm.tokens["kyso-clinician"].pin
    signatures = sign_many(hsm.module, "kyso-clinician", "dr-rsa", pin, items)
    for (data, scheme), signature in zip(items, signatures, strict=True):
        _verify(_cert(hsm, "kyso-clinician", "dr-rsa"), data, signature, scheme)
    (raw,) = sign_many(hsm.module, "kyso-clinician", "dr-ec", pin, [(b"json", "ecdsa")])
    assert len(raw) == 64  # r||s, as the token returns it
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    _verify(_cert(hsm, "kyso-clinician", "dr-ec"), b"json", der, "ecdsa")


def test_a_key_that_asks_for_the_pin_at_every_signature_gets_it_from_the_pin_source(hsm: Hsm):
    pin = CountingPin(hsm.tokens["kyso-hsm"].pin)
    key = Pkcs11Key("kyso-hsm/seal-qes", hsm.module, "kyso-hsm", "seal-qes", pin)
    key.check()  # logged in, and the certificate proved with a signature of its own
    pin.asked = 0
    for n in range(3):
        data = f"qualified {n}".encode()
        _verify(_cert(hsm, "kyso-hsm", "seal-qes"), data, key.sign(data, "ecdsa"), "ecdsa")
    assert pin.asked == 3  # once per signature
    plain_pin = CountingPin(hsm.tokens["kyso-hsm"].pin)
    plain = Pkcs11Key("kyso-hsm/seal-ec", hsm.module, "kyso-hsm", "seal-ec", plain_pin)
    plain.check()
    plain_pin.asked = 0
    for n in range(3):
        plain.sign(f"plain {n}".encode(), "ecdsa")
    assert plain_pin.asked == 0  # a key without CKA_ALWAYS_AUTHENTICATE: the login serves
    pin = hsm.tokens["kyso-clinician"].pin
    items = [(b"one", "ecdsa"), (b"two", "ecdsa")]
    for (data, _), raw in zip(
        items, sign_many(hsm.module, "kyso-clinician", "dr-qes", pin, items), strict=True
    ):
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        _verify(_cert(hsm, "kyso-clinician", "dr-qes"), data, der, "ecdsa")


def test_sign_many_with_a_wrong_pin_is_unavailable_and_does_not_show_it(hsm: Hsm):
    with pytest.raises(
        TokenUnavailable, match=r"token 'kyso-clinician': token unavailable \(wrong PIN\)"
    ) as refused:
        sign_many(hsm.module, "kyso-clinician", "dr-ec", CANARY_PIN, [(b"x", "ecdsa")])
    _shows_no_canary(refused.value)


def test_a_failing_token_call_is_tried_three_times_on_a_fresh_session(hsm: Hsm):
    pin = CountingPin(hsm.tokens["kyso-hsm"].pin)
    key = Pkcs11Key("flaky", hsm.module, "kyso-hsm", "seal-ec", pin)
    key.check()
    _logged_out(hsm, "kyso-hsm")
    pin.asked, pin.failures = 0, 2
    data = b"signed at the third login"
    _verify(_cert(hsm, "kyso-hsm", "seal-ec"), data, key.sign(data, "ecdsa"), "ecdsa")
    assert pin.asked == 3

    _logged_out(hsm, "kyso-hsm")
    pin.asked, pin.failures = 0, 3
    with pytest.raises(
        TokenUnavailable, match=r"'flaky': token unavailable \(the module reports a general error"
    ):
        key.sign(b"three failures", "ecdsa")
    assert pin.asked == 3  # three tries, no fourth
    key.sign(b"the next call starts afresh", "ecdsa")


def test_a_refused_pin_is_offered_once_and_not_retried(hsm: Hsm):
    _logged_out(hsm, "kyso-spare")
    wrong = CountingPin("wrong-PIN-5702")
    key = Pkcs11Key("refused", hsm.module, "kyso-spare", "spare-ec", wrong)
    with pytest.raises(TokenUnavailable, match=r"'refused': token unavailable \(wrong PIN\)$"):
        key.sign(b"x", "ecdsa")
    assert wrong.asked == 1  # one C_Login: every try counts towards locking the token
    _key(hsm, "kyso-spare", "spare-ec").sign(b"the right PIN still logs in", "ecdsa")
