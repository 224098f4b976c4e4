"""Issuance contracts (issue 11)."""
