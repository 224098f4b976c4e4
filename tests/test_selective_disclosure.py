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


# -- the vault keeps an SD-JWT presentation as application/dc+sd-jwt -------------------------------------------


def _presentation(issuer: SigningKey, holder_key: SigningKey, **claims: object) -> str:
    from datetime import UTC, datetime

    from issuance.credentials import VCT_CRIMINAL_RECORD, issue_credential
    from issuance.presentations import present
    from issuance.status_list import StatusReference

    now = datetime.now(UTC)
    credential = issue_credential(
        issuer,
        issuer="http://localhost:8080",
        vct=VCT_CRIMINAL_RECORD,
        claims=claims or {"full_name": "Nguyễn Văn A", "criminal_record": "Không có án tích"},
        holder_jwk=holder_key.public_jwk,
        status=StatusReference(0, "http://localhost:8080/issuance/status/0"),
        issued_at=now,
    )
    return present(credential, holder_key, disclose=["full_name"], audience="agency-x", nonce="n-1", at=now)


def _sniff(data: bytes, chunk: int = 5) -> str:
    from vault.content_types import Sniffer

    sniffer = Sniffer()
    for start in range(0, len(data), chunk):
        sniffer.feed(data[start : start + chunk])
    return sniffer.finish()


def test_the_vault_recognises_an_sd_jwt_presentation_and_refuses_lookalikes() -> None:
    from vault.content_types import SD_JWT

    issuer, holder_key = SigningKey.generate(), SigningKey.generate()
    presentation = _presentation(issuer, holder_key)
    assert _sniff(presentation.encode()) == SD_JWT
    assert _sniff(presentation.rsplit("~", 1)[0].encode() + b"~") == SD_JWT  # an issued SD-JWT VC too
    header, rest = presentation.split(".", 1)
    plain_jwt = presentation.split("~", 1)[0]  # no disclosures, no ~: a JWT, not an SD-JWT
    other_typ = b64url_json({"alg": "ES256", "typ": "JWT"}) + "." + rest
    for bad in (plain_jwt, other_typ, presentation + "\n<script>", presentation.replace("~", "~ ", 1), "eyJ!!!.a.b~"):
        with pytest.raises(InvalidArgument, match="unsupported content type"):
            _sniff(bad.encode())
    assert header.startswith("eyJ")


def b64url_json(value: dict[str, str]) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
