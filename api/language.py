"""Reports in the caller's language: ``Accept-Language: vi`` explains them in Vietnamese,
anything else in English (:mod:`kyso.signer.verify.explain`)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from kyso.signer.verify.explain import choose_language, explain_report


def explained(report: dict[str, Any]) -> Response:
    """The JSON answer of a validation report, explained in the language the caller asks for."""
    lang = choose_language(request.headers.get("Accept-Language"))
    response = jsonify(explain_report(report, lang))
    response.headers["Content-Language"] = lang
    response.vary.add("Accept-Language")
    return response
