"""The OpenID Provider (OpenID Connect Core 1.0 on OAuth 2.0), protocol logic from authlib.

No HTTP framework here: ``services/edge`` translates HTTP requests into these calls.
"""
