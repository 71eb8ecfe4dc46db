"""Fixtures of the API tests beyond tests/conftest.py: a generated dev PKI served over HTTP
on a free loopback port, for B-LT/B-LTA, revocation and TSA failover (tests/ltv_support.py)."""

from __future__ import annotations

from ltv_support import ltv_nssdb, ltv_pki, ltv_service

__all__ = ["ltv_nssdb", "ltv_pki", "ltv_service"]
