"""A demo relying party: a ministry portal that signs citizens in with the national identity (OpenID Connect)."""
