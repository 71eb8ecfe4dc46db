"""A validation report explained to a person, in Vietnamese or English.

:func:`explain_report` adds to a report (the JSON form of SPEC 5, for a PDF, a JWS or an XML
signature alike) an ``explanation`` member for the document and one for each signature,
built only from the report's own members:

- document: ``lang``, ``verdict`` (the indication in words), ``summary`` and ``labels``
  (the headings a page or a terminal shows before each part);
- signature: ``verdict``, ``signer``, ``time`` (in Vietnam's time, UTC+7, and whether a
  timestamp proves it), ``changes`` (whether the document was changed after signing),
  ``trust`` (whether the signer is trusted, and why not), ``revocation``, ``log`` (whether
  kyso's log holds this exact file), ``terms`` (every code of the signature with its
  meaning beside it) and, when the report has a ``message``, ``detail`` (that message, in
  English, as the validator gave it).

:func:`choose_language` reads an ``Accept-Language`` header: Vietnamese when asked for,
English otherwise. :func:`render_text` lays an explained report out for a terminal.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from kyso.signer.verify import words as w

VIETNAM = timezone(timedelta(hours=7), "ICT")  # no daylight saving time since 1975
_INTEGRITY = {"HASH_FAILURE", "SIG_CRYPTO_FAILURE", "FORMAT_FAILURE", "CRYPTO_CONSTRAINTS_FAILURE"}
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def choose_language(accept_language: str | None) -> str:
    """``vi`` or ``en`` from an ``Accept-Language`` header (RFC 9110 12.5.4): the supported
    language with the highest weight; English when neither is asked for."""
    best, best_q = "en", 0.0
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        q -= position * 1e-6  # equal weights: the first named wins
        if primary in w.LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def explain_report(report: dict[str, Any], lang: str) -> dict[str, Any]:
    """A copy of ``report`` with its explanations in ``lang`` (``vi`` or ``en``)."""
    if lang not in w.LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(w.LANGUAGES)}, not {lang!r}")
    out = copy.deepcopy(report)
    s = w.SENTENCES[lang]
    signatures = out.get("signatures") or []
    for signature in signatures:
        signature["explanation"] = explain_signature(signature, lang)
    if signatures:
        parts = [
            s["summary_part"].format(n=n, verdict=_indication(sig["indication"], lang).lower())
            for n, sig in enumerate(signatures, 1)
        ]
        summary = s["summary"].format(count=len(signatures), parts="; ".join(parts))
    else:
        summary = s["summary_none"]
    out["explanation"] = {
        "lang": lang,
        "verdict": _indication(out.get("indication", "TOTAL_FAILED"), lang),
        "summary": summary,
        "labels": dict(w.LABELS[lang]),
    }
    return out


def explain_signature(sig: dict[str, Any], lang: str) -> dict[str, Any]:
    """The explanation of one signature of a report (see the module's docstring)."""
    explanation: dict[str, Any] = {
        "verdict": _verdict(sig, lang),
        "signer": _signer(sig, lang),
        "time": _time(sig, lang),
        "changes": _changes(sig, lang),
        "trust": _trust(sig, lang),
        "revocation": _sentence(_meaning(w.REVOCATION, sig.get("revocation"), lang)),
        "log": _log(sig, lang),
        "terms": _terms(sig, lang),
    }
    if sig.get("message"):
        explanation["detail"] = sig["message"]
    return explanation


def format_time(iso: str | None, lang: str) -> str | None:
    """An ISO 8601 UTC time of a report as a person in Vietnam reads it (UTC+7)."""
    if not iso:
        return None
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(VIETNAM)
    return w.SENTENCES[lang]["clock"].format(
        hms=f"{local:%H:%M:%S}",
        dmy=f"{local:%d/%m/%Y}",
        dmy_en=f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}",
    )


def _sentence(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:] + "."


def _indication(code: str, lang: str) -> str:
    return w.INDICATIONS[lang].get(code, code)


def _meaning(table: dict[str, dict[str, str]], code: Any, lang: str) -> str:
    return table[lang].get(code, str(code)) if code is not None else "—"


def _verdict(sig: dict[str, Any], lang: str) -> str:
    s = w.SENTENCES[lang]
    if sig["indication"] == "TOTAL_PASSED":
        return s["passed_revoked_later" if sig.get("revocation") == "revoked" else "passed"]
    sub = str(sig.get("sub_indication") or "")
    meaning = w.SUB_INDICATIONS[lang].get(sub, sub)
    if sub == "FORMAT_FAILURE" and sig.get("intact") and sig.get("modifications") is not None:
        changes = _changes(sig, lang)  # a PDF changed after signing: say so in so many words
        meaning = changes[0].lower() + changes[1:].rstrip(".")
    return s["not_passed"].format(indication=_indication(sig["indication"], lang), meaning=meaning)


def _common_name(subject: str | None) -> str | None:
    """``BS. Nguyễn Văn An`` out of ``Common Name: BS. Nguyễn Văn An, Organization: ...``."""
    if not subject:
        return None
    for part in subject.split(", "):
        name, _, value = part.partition(": ")
        if name == "Common Name" and value:
            return value
    return subject


def _signer(sig: dict[str, Any], lang: str) -> str:
    s = w.SENTENCES[lang]
    signer = sig.get("signer")
    if not signer:
        return s["signer_unknown"]
    return s["signer"].format(
        name=_common_name(signer.get("subject")), issuer=_common_name(signer.get("issuer"))
    )


def _time(sig: dict[str, Any], lang: str) -> str:
    s = w.SENTENCES[lang]
    timestamp = sig.get("timestamp")
    if timestamp and timestamp.get("valid"):
        return s["time_proven"].format(
            time=format_time(timestamp["time"], lang), tsa=_common_name(timestamp.get("tsa"))
        )
    when = format_time(sig.get("signing_time"), lang)
    if when is None:
        return s["time_unknown"]
    return s["time_bad_timestamp" if timestamp else "time_claimed"].format(time=when)


def _changes(sig: dict[str, Any], lang: str) -> str:
    s = w.SENTENCES[lang]
    sub, modifications = sig.get("sub_indication"), sig.get("modifications")
    if sub == "HASH_FAILURE":
        return s["changed_hash"]
    if modifications is None:  # a JWS (or an XML signature): no revisions, the value decides
        if sig.get("intact"):
            return s["unchanged"]
        return s["changed_json"] if sub == "SIG_CRYPTO_FAILURE" else s["changed_unknown"]
    if not sig.get("intact"):
        return s["changed_unknown"]
    if modifications == "OTHER" or sig.get("coverage") == "PARTIAL":
        return s["changed"]
    if sig["indication"] == "TOTAL_FAILED" and sub == "FORMAT_FAILURE":
        return s["changed_docmdp"]
    if modifications == "FORM_FILLING":
        return s["form_filling"]
    if modifications == "ANNOTATIONS":
        return s["annotations"]
    return s["unchanged_later"] if sig.get("coverage") == "ENTIRE_REVISION" else s["unchanged"]


def _path(sig: dict[str, Any]) -> str:
    return " → ".join(_common_name(name) or "?" for name in sig.get("chain") or [])


def _trust(sig: dict[str, Any], lang: str) -> str:
    s = w.SENTENCES[lang]
    path = _path(sig)
    if sig.get("trusted"):
        key = (
            "trusted"
            if sig["indication"] == "TOTAL_PASSED" or sig.get("sub_indication") not in _INTEGRITY
            else "trusted_integrity"
        )
        return s[key].format(path=path)
    sub = str(sig.get("sub_indication") or "")
    reason = w.SUB_INDICATIONS[lang].get(sub) if sub not in _INTEGRITY else None
    text = s["untrusted"].format(reason=reason or s["untrusted_reason"])
    if path:
        text += s["untrusted_path"].format(path=path)
    if sub in ("NO_CERTIFICATE_CHAIN_FOUND", "CERTIFICATE_CHAIN_GENERAL_FAILURE"):
        text += s["untrusted_hint"]
    return text


def _log(sig: dict[str, Any], lang: str) -> str:
    s = w.SENTENCES[lang]
    entry = sig.get("registered")
    if not entry:
        return s["not_logged"]
    record_id = entry.get("record_id")
    record = s["logged_record"].format(record_id=record_id) if record_id else ""
    return s["logged"].format(seq=entry.get("audit_seq"), record=record)


def _terms(sig: dict[str, Any], lang: str) -> list[dict[str, str]]:
    """Every code and flag of the signature, each with its meaning beside it."""
    terms = [{"code": sig["indication"], "meaning": _indication(sig["indication"], lang)}]
    sub = sig.get("sub_indication")
    if sub:
        terms.append({"code": sub, "meaning": w.SUB_INDICATIONS[lang].get(sub, sub)})
    level = sig.get("level")
    if level:
        meaning = f"{w.SENTENCES[lang]['term_level']}: {_meaning(w.LEVELS, level, lang)}"
        terms.append({"code": level, "meaning": meaning})
    for table, key in (
        (w.COVERAGES, "coverage"),
        (w.MODIFICATIONS, "modifications"),
        (w.REVOCATION, "revocation"),
    ):
        if sig.get(key) is not None:
            terms.append({"code": str(sig[key]), "meaning": _meaning(table, sig[key], lang)})
    for flag in ("intact", "trusted"):
        value = bool(sig.get(flag))
        terms.append(
            {"code": f"{flag}: {str(value).lower()}", "meaning": w.BOOLEANS[lang][(flag, value)]}
        )
    return terms


def render_text(report: dict[str, Any]) -> str:
    """An explained report (:func:`explain_report`) as plain text for a terminal."""
    explanation = report["explanation"]
    labels = explanation["labels"]
    lines = [
        f"{labels['document']}: {explanation['verdict']}",
        explanation["summary"],
        f"{labels['sha256']}: {report.get('document_sha256', '')}",
    ]
    for n, sig in enumerate(report.get("signatures") or [], 1):
        ex = sig["explanation"]
        field = f" ({sig['field']})" if sig.get("field") else ""
        lines += ["", f"{labels['signature']} {n}{field}: {ex['verdict']}"]
        for key in ("signer", "time", "changes", "trust", "revocation", "log"):
            lines.append(f"  {labels[key]}: {ex[key]}")
        lines.append(f"  {labels['terms']}:")
        lines += [f"    {term['code']}: {term['meaning']}" for term in ex["terms"]]
        if ex.get("detail"):
            lines.append(f"  {labels['detail']}: {ex['detail']}")
    return "\n".join(lines) + "\n"
