"""kyso: signing and record-integrity service for electronic medical records."""

from __future__ import annotations

__version__ = "0.1.0"
