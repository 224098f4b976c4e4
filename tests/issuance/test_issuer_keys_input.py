"""A malformed holder or issuer JWK is a domain error, never a library exception."""

from __future__ import annotations

import pytest

from core.errors import InvalidArgument
from issuance.issuer_keys import public_key


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "y": "abc"},  # no x: joserfc's KeyParameterError
        {"kty": "EC", "crv": "P-256", "x": "", "y": ""},
        {"kty": "EC", "crv": "P-256", "x": 1, "y": 2},
    ],
)
def test_a_malformed_jwk_is_invalid_argument(jwk: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        public_key(jwk)
