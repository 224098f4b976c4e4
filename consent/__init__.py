"""Consent: citizens grant agencies access to chosen documents (explicit state machine): the consent issue."""
