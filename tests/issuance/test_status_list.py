"""The Token Status List (draft-ietf-oauth-status-list): the draft's example encodings, signing, status checks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidArgument
from issuance.issuer_keys import SigningKey
from issuance.status_list import (
    Status,
    StatusList,
    StatusReference,
    credential_status,
    sign_status_list,
    verify_status_list,
)

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
URI = "https://dinhdanh.example/statuslists/1"
KEY = SigningKey.from_seed(b"\x11" * 32)

# draft-ietf-oauth-status-list §4.1 (Status List, examples with 1 and 2 bits) and §4.2 (the JSON lst values)
ONE_BIT = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
ONE_BIT_BYTES = bytes([0xB9, 0xA3])
ONE_BIT_LST = "eNrbuRgAAhcBXQ"
TWO_BITS = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
TWO_BITS_BYTES = bytes([0xC9, 0x44, 0xF9])
TWO_BITS_LST = "eNo76fITAAPfAgc"


def _built(values: list[int], bits: int) -> StatusList:
    status_list = StatusList.new(len(values), bits)
    for index, value in enumerate(values):
        status_list.set(index, value)
    return status_list


def test_the_drafts_one_bit_example_encodes_and_decodes() -> None:
    status_list = _built(ONE_BIT, 1)
    assert status_list.to_bytes() == ONE_BIT_BYTES
    assert status_list.encoded() == {"bits": 1, "lst": ONE_BIT_LST}
    parsed = StatusList.decode({"bits": 1, "lst": ONE_BIT_LST})
    assert [parsed.get(i) for i in range(16)] == ONE_BIT


def test_the_drafts_two_bit_example_encodes_and_decodes() -> None:
    status_list = _built(TWO_BITS, 2)
    assert status_list.to_bytes() == TWO_BITS_BYTES
    assert status_list.encoded() == {"bits": 2, "lst": TWO_BITS_LST}
    parsed = StatusList.decode({"bits": 2, "lst": TWO_BITS_LST})
    assert [parsed.get(i) for i in range(12)] == TWO_BITS


def test_a_new_list_is_all_valid_and_set_get_agree_with_a_naive_reference() -> None:
    status_list = StatusList.new(1000, 2)
    assert all(status_list.get(i) == Status.VALID for i in range(1000))
    naive = [0] * 1000
    for index in (0, 3, 7, 8, 500, 999):
        status_list.set(index, Status.SUSPENDED)
        naive[index] = 2
    status_list.set(3, Status.INVALID)
    naive[3] = 1
    assert [status_list.get(i) for i in range(1000)] == naive
    assert StatusList.decode(status_list.encoded()).to_bytes()[: len(status_list.to_bytes())] == status_list.to_bytes()


def test_bad_lists_and_values_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="bits"):
        StatusList.new(8, 3)
    one_bit = StatusList.new(8, 1)
    with pytest.raises(InvalidArgument, match="1 bit"):
        one_bit.set(0, Status.SUSPENDED)
    with pytest.raises(InvalidArgument, match="index"):
        one_bit.get(8)
    with pytest.raises(InvalidArgument, match="index"):
        one_bit.set(-1, 1)
    with pytest.raises(InvalidArgument, match="lst"):
        StatusList.decode({"bits": 1, "lst": "not*base64"})
    with pytest.raises(InvalidArgument, match="lst"):
        StatusList.decode({"bits": 1, "lst": base64.urlsafe_b64encode(b"not zlib").decode().rstrip("=")})
    with pytest.raises(InvalidArgument, match="bits"):
        StatusList.decode({"bits": 5, "lst": ONE_BIT_LST})


def test_a_signed_list_round_trips_and_checks_a_credentials_status() -> None:
    status_list = StatusList.new(64, 2)
    status_list.set(5, Status.INVALID)
    status_list.set(6, Status.SUSPENDED)
    token = sign_status_list(KEY, status_list, uri=URI, at=AT, ttl=timedelta(hours=1), lifetime=timedelta(days=1))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "kid": KEY.kid, "typ": "statuslist+jwt"}
    verified = verify_status_list(token, KEY.jwks(), uri=URI, at=AT + timedelta(minutes=5))
    assert verified.uri == URI
    assert verified.ttl == 3600
    assert verified.issued_at == AT
    assert verified.expires_at == AT + timedelta(days=1)
    assert credential_status(StatusReference(idx=4, uri=URI), verified) is Status.VALID
    assert credential_status(StatusReference(idx=5, uri=URI), verified) is Status.INVALID
    assert credential_status(StatusReference(idx=6, uri=URI), verified) is Status.SUSPENDED
    with pytest.raises(InvalidArgument, match="another status list"):
        credential_status(StatusReference(idx=4, uri=URI + "x"), verified)
    with pytest.raises(InvalidArgument, match="index"):
        credential_status(StatusReference(idx=64, uri=URI), verified)


def test_a_status_list_token_is_refused_when_wrong() -> None:
    status_list = StatusList.new(16, 1)
    token = sign_status_list(KEY, status_list, uri=URI, at=AT, lifetime=timedelta(hours=1))
    with pytest.raises(InvalidArgument, match="sub"):
        verify_status_list(token, KEY.jwks(), uri=URI + "/other", at=AT)
    with pytest.raises(InvalidArgument, match="expired"):
        verify_status_list(token, KEY.jwks(), uri=URI, at=AT + timedelta(hours=2))
    other = SigningKey.from_seed(b"\x22" * 32)
    with pytest.raises(InvalidArgument, match="unknown kid"):
        verify_status_list(token, other.jwks(), uri=URI, at=AT)
    forged = {"keys": [{**other.public_jwk, "kid": KEY.kid}]}
    with pytest.raises(InvalidArgument, match="signature"):
        verify_status_list(token, forged, uri=URI, at=AT)
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["status_list"]["lst"] = ONE_BIT_LST
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(InvalidArgument, match="signature"):
        verify_status_list(f"{head}.{tampered}.{signature}", KEY.jwks(), uri=URI, at=AT)
    with pytest.raises(InvalidArgument):
        verify_status_list("garbage", KEY.jwks(), uri=URI, at=AT)


def test_a_jwt_of_another_type_is_not_a_status_list() -> None:
    from joserfc import jwt

    claims = {"sub": URI, "iat": int(AT.timestamp()), "status_list": {"bits": 1, "lst": ONE_BIT_LST}}
    token = jwt.encode({"alg": "ES256", "kid": KEY.kid, "typ": "JWT"}, claims, KEY.private, algorithms=["ES256"])
    with pytest.raises(InvalidArgument, match="statuslist\\+jwt"):
        verify_status_list(token, KEY.jwks(), uri=URI, at=AT)


def test_status_references_parse_from_a_credentials_status_claim() -> None:
    reference = StatusReference.from_claim({"status_list": {"idx": 7, "uri": URI}})
    assert reference == StatusReference(idx=7, uri=URI)
    assert reference.claim() == {"status_list": {"idx": 7, "uri": URI}}
    for bad in (None, {}, {"status_list": {"idx": -1, "uri": URI}}, {"status_list": {"idx": True, "uri": URI}},
                {"status_list": {"idx": 1, "uri": ""}}, {"status_list": {"idx": "1", "uri": URI}}):  # fmt: skip
        with pytest.raises(InvalidArgument):
            StatusReference.from_claim(bad)
