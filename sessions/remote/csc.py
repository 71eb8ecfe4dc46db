"""A Cloud Signature Consortium API service as a remote signing provider.

The clinician's credential is found with ``credentials/list`` for their user id (or the user
id is the credential id: ``credential_from = "user_id"``), its certificate with
``credentials/info``. The signatures of all the session's documents are asked in one
``credentials/authorize`` (with the hashes when the credential pins them, and the session's
description, which the service shows the clinician where it asks them) and one
``signatures/signHash``; the CSC API answers synchronously, so the answer is ``signed``
(the confirmation, if the service asks one, happens inside those calls).
"""

from __future__ import annotations

import threading

from kyso.errors import RemoteSignerUnavailable
from kyso.keystore.csc_client import CscClient, CscCredential
from kyso.sessions.remote.providers import (
    ProviderAnswer,
    RemoteProvider,
    SignatureRequest,
    SignerCertificate,
)


class CscProvider(RemoteProvider):
    kind = "csc"

    def __init__(
        self,
        name: str,
        client: CscClient,
        credential_from: str,
        poll_seconds: float,
        poll_max_seconds: float,
    ) -> None:
        super().__init__(name, poll_seconds, poll_max_seconds)
        self.client = client
        self.credential_from = credential_from
        self._credentials: dict[str, CscCredential] = {}
        self._lock = threading.Lock()

    def certificate(self, user_id: str) -> SignerCertificate:
        credential = self._find(user_id)
        with self._lock:
            self._credentials[credential.credential_id] = credential
        return SignerCertificate(
            credential.certificate, credential.chain, credential.credential_id
        )

    def _find(self, user_id: str) -> CscCredential:
        if self.credential_from == "user_id":
            credential = self.client.credential(user_id)
            if not credential.enabled:
                raise RemoteSignerUnavailable(
                    f"remote signing provider {self.name!r} says this credential is disabled"
                )
            return credential
        # A user may hold several credentials (and a test service lists its CAs too): the
        # first enabled one whose certificate is not a CA's is the clinician's.
        for credential_id in self.client.list_credentials(user_id):
            credential = self.client.credential(credential_id)
            if credential.enabled and not credential.certificate.ca:
                return credential
        raise RemoteSignerUnavailable(
            f"remote signing provider {self.name!r} holds no usable signing credential for "
            "this user; check the user id, or the clinician's enrolment with the provider"
        )

    def request_signatures(self, request: SignatureRequest) -> ProviderAnswer:
        assert request.credential is not None
        with self._lock:
            credential = self._credentials.get(request.credential)
        if credential is None:
            credential = self.client.credential(request.credential)
        signatures = self.client.sign_digests(
            credential, [d.digest for d in request.documents], request.scheme, request.description
        )
        return ProviderAnswer("signed", tuple((None, s) for s in signatures))

    def status(self, transaction_id: str, reference: str | None) -> ProviderAnswer:
        # The CSC API signs within the request: a transaction is never left pending with it.
        return ProviderAnswer(
            "failed", message="a CSC service keeps no transaction to ask about"
        )

    def close(self) -> None:
        self.client.close()
