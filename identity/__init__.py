"""Citizen accounts: activation, password + TOTP authentication, throttling, assurance levels."""
