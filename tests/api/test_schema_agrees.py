"""The OpenAPI document and the validation agree: schemathesis over the WSGI app.

For every documented operation, requests generated from its schema (positive: valid by
the document; negative: not) are sent with an API key of a role that may call it, and:

- nothing is a server error (``not_a_server_error``);
- every answer has its documented shape (``response_schema_conformance``: the answer
  models of :mod:`kyso.api.answers`);
- a request the document accepts is never refused for its shape: no problem with an
  ``errors`` member (what the request models refuse), no ``invalid_json`` and no
  ``unsupported_media_type`` (:func:`accepted_when_valid`). A refusal of content that no
  schema can judge (an unknown key alias, a PDF that does not parse) is an answer;
- a request the document refuses is refused (``negative_data_rejection``).

Bounded: a few examples per operation, under a minute on two cores.
"""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
)
from support import Service, corpus_pdfs

SCHEMA_CODES = {"invalid_json", "unsupported_media_type"}
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}

_PDFS = [p.read_bytes() for p in corpus_pdfs()[:3]]
schemathesis.openapi.media_type("application/pdf", st.sampled_from(_PDFS) | st.binary(max_size=64))
schemathesis.openapi.media_type("application/timestamp-query", st.binary(max_size=64))
schemathesis.openapi.media_type("application/ocsp-request", st.binary(max_size=64))


@schemathesis.check
def accepted_when_valid(ctx, response, case) -> bool | None:
    """A request valid by the document is not refused for its shape."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code < 400:
        return None
    try:
        problem = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(problem, dict) or "code" not in problem:
        return None
    if "errors" in problem or problem["code"] in SCHEMA_CODES:
        raise AssertionError(
            f"a request the document accepts was refused ({response.status_code} "
            f"{problem['code']}): {problem['detail']}"
        )
    return None


def role_for(path: str) -> str | None:
    """A client whose role may call ``path`` (None: a public one)."""
    if path.startswith("/api/v1/audit"):
        return "admin"
    if path.startswith("/api/v1/") and path != "/api/v1/openapi.json":
        return "his"
    return None


CHECKS = [not_a_server_error, response_schema_conformance, accepted_when_valid]


def exercise(service: Service, operation, mode: GenerationMode, examples: int, failures: dict) -> None:
    """Send ``examples`` generated requests of ``mode`` to ``operation``; collect what fails."""
    role = role_for(operation.path)
    headers = service.auth(role) if role else {}
    checks = CHECKS if mode is GenerationMode.POSITIVE else [*CHECKS, negative_data_rejection]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's, reported at once
            failures.setdefault(f"{operation.label} ({mode.value})", []).append(str(exc)[:600])

    try:
        run()
    except Unsatisfiable:  # nothing in it can be made invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_every_operation_accepts_what_its_schema_accepts(service: Service) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", service.client.application)
    failures: dict[str, list[str]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            exercise(service, operation, mode, examples, failures)
    report = "\n\n".join(f"{label}:\n" + "\n".join(sorted(set(found))[:3]) for label, found in failures.items())
    assert not failures, report
