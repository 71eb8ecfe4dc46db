"""Signing sessions whose clinician signs remotely, on a phone (SPEC section 10)."""
