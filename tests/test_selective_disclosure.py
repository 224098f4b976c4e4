"""Selective disclosure (issue 11 item 3): the citizen shares a certificate revealing only the claims chosen, as
an SD-JWT presentation (RFC 9901) bound to the holder key the portal holds for them (portal/holder.py), stored in
the citizen's vault and shared with one agency through a consent; the agency verifies it offline."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest

from core.errors import InvalidArgument
from core.keys.provider import KeyUnavailable
from core.keys.purposes import HOLDER_KEY
from issuance.issuer_keys import SigningKey
from portal import holder
from portal.settings import PortalSettings


def _keys_dir(tmp_path: Path, master: bytes) -> Path:
    folder = tmp_path / "portal-keys"
    folder.mkdir()
    (folder / HOLDER_KEY).write_bytes(master)
    return folder


def _rfc5869(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 written from RFC 5869 §2.2-2.3 (no salt: HashLen zero bytes)."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def test_the_holder_key_is_hkdf_of_holder_key_over_the_sub_deterministic_and_per_citizen(tmp_path: Path) -> None:
    master = os.urandom(32)
    settings = PortalSettings(keys_dir=_keys_dir(tmp_path, master))
    alice, bob = "sub-alice-pairwise", "sub-bob-pairwise"
    assert holder.derive_seed(master, alice) == _rfc5869(master, alice.encode())
    key = holder.holder_key(settings, alice)
    assert key.public_jwk == SigningKey.from_seed(_rfc5869(master, alice.encode())).public_jwk
    again = PortalSettings(keys_dir=settings.keys_dir)  # another process holding the same HOLDER_KEY
    assert holder.holder_public_jwk(again, alice) == key.public_jwk
    assert holder.holder_public_jwk(settings, bob)["x"] != key.public_jwk["x"]
    (tmp_path / "other").mkdir()
    other = PortalSettings(keys_dir=_keys_dir(tmp_path / "other", os.urandom(32)))
    assert holder.holder_public_jwk(other, alice)["x"] != key.public_jwk["x"]


def test_the_public_jwk_is_what_a_credentials_cnf_holds(tmp_path: Path) -> None:
    settings = PortalSettings(keys_dir=_keys_dir(tmp_path, os.urandom(32)))
    jwk = holder.holder_public_jwk(settings, "some-sub")
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert "d" not in jwk
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")


def test_no_holder_key_is_a_clear_refusal(tmp_path: Path) -> None:
    assert not holder.available(PortalSettings())
    with pytest.raises(KeyUnavailable, match="DINHDANH_KEYS_DIR"):
        holder.holder_public_jwk(PortalSettings(), "some-sub")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KeyUnavailable, match=HOLDER_KEY):
        holder.holder_key(PortalSettings(keys_dir=empty), "some-sub")
    settings = PortalSettings(keys_dir=_keys_dir(tmp_path, os.urandom(32)))
    assert holder.available(settings)
    for bad in ("", "x" * 256):
        with pytest.raises(InvalidArgument):
            holder.holder_key(settings, bad)
