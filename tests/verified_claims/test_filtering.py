"""The claims parameter (OpenID Connect Core §5.5) and IDA 1.0's request filtering (§6), as pure functions; the
userinfo JWT's encryption round trip (Core §5.3.2) with joserfc."""

from __future__ import annotations

import json
import time

import pytest
from joserfc import jwe, jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from core.errors import InvalidArgument
from identity.oidc import claims_request, registration, userinfo_jwt, verified_claims
from identity.oidc.clients import Client
from identity.oidc.keys import KeyRing, StoredKey
from identity.oidc.verified_claims import Facts, InPersonFacts

AVAILABLE = {"given_name": "An", "family_name": "Nguyễn", "middle_name": "Văn", "name": "Nguyễn Văn An",
             "birthdate": "1990-02-03", "gender": "male", "nationality": "Việt Nam",
             "phone_number": "+84901234567"}  # fmt: skip
PROFILE = {"openid", "profile"}
LEVEL_1 = Facts(1, "2026-11-30T08:00:00+00:00")
IN_PERSON = InPersonFacts("4f0c6b1e-0000-4000-8000-000000000001", "2026-12-01T09:30:00+00:00",
                          "Công an phường Ba Đình", ("vpip", "pvp"), "idcard", "001090000001",
                          "Cục Cảnh sát QLHC về TTXH", "2021-05-01")  # fmt: skip
LEVEL_2 = Facts(2, "2026-11-30T08:00:00+00:00", IN_PERSON)


def request(verification: dict | None = None, claims: dict | None = None) -> list[dict]:
    raw = {"userinfo": {"verified_claims": {"verification": verification or {"trust_framework": None},
                                            "claims": claims or {"given_name": None}}}}  # fmt: skip
    return claims_request.parse(json.dumps(raw)).userinfo["verified_claims"]


def build(requests: list[dict], facts: Facts = LEVEL_1, scopes: set[str] = PROFILE, now: float | None = None):
    return verified_claims.build(requests, facts, AVAILABLE, scopes, "001090000001", now or time.time())


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[]",
        '{"userinfo": []}',
        '{"userinfo": {"given_name": 1}}',
        '{"userinfo": {"given_name": {"essential": "yes"}}}',
        '{"userinfo": {"given_name": {"values": "An"}}}',
        '{"userinfo": {"verified_claims": {"claims": {"given_name": null}}}}',  # no verification
        '{"userinfo": {"verified_claims": {"verification": {}, "claims": {"given_name": null}}}}',  # no trust_framework
        '{"id_token": {"verified_claims": {"verification": {"trust_framework": null}, "claims": {}}}}',  # empty claims
        '{"userinfo": {"verified_claims": {"verification": {"trust_framework": null, "time": {"max_age": -1}},'
        ' "claims": {"given_name": null}}}}',
    ],
)
def test_malformed_claims_parameters_are_refused(raw: str) -> None:
    with pytest.raises(claims_request.InvalidClaimsRequest):
        claims_request.parse(raw)


def test_the_request_keeps_what_this_provider_acts_on() -> None:
    parsed = claims_request.parse(json.dumps({
        "userinfo": {"given_name": {"essential": True, "purpose": "x"}, "email": None, "nickname": {"value": "a"}},
        "id_token": {"birthdate": None, "acr": {"essential": True, "values": ["2"]}},
        "other": {"given_name": None},
    }))  # fmt: skip
    assert parsed.userinfo == {"given_name": {"essential": True}}  # claims not understood are ignored (§5.5)
    assert parsed.id_token == {"birthdate": None, "acr": {"essential": True, "values": ["2"]}}
    assert claims_request.ClaimsRequest.from_compact(parsed.compact()) == parsed
    assert claims_request.parse(None).compact() is None
    with pytest.raises(claims_request.InvalidClaimsRequest, match="too large"):
        claims_request.parse(json.dumps({"userinfo": {"given_name": {"values": ["x" * 50] * 30}}}))


def test_value_and_values_and_scopes() -> None:
    member = {"given_name": {"value": "An"}, "family_name": {"values": ["Trần", "Lê"]}, "phone_number": None,
              "birthdate": {"essential": True}}  # fmt: skip
    assert claims_request.select(member, AVAILABLE, PROFILE) == {"given_name": "An", "birthdate": "1990-02-03"}
    assert "phone_number" in claims_request.select(member, AVAILABLE, PROFILE | {"phone"})
    released = {"sub": "s", "given_name": "An", "family_name": "Nguyễn", "gender": "male"}
    assert claims_request.refused_by_value(member, released) == {"sub": "s", "given_name": "An", "gender": "male"}


def test_no_request_no_verified_claims() -> None:
    assert verified_claims.build(None, LEVEL_1, AVAILABLE, PROFILE, "001090000001", time.time()) is None
    assert verified_claims.build([], LEVEL_2, AVAILABLE, PROFILE, "001090000001", time.time()) is None


def test_only_the_claims_asked_for_and_only_what_is_verified() -> None:
    found = build(request(claims={"given_name": None, "birthdate": None, "phone_number": None, "email": None}))
    assert found == {"verification": {"trust_framework": "vn_eid"},
                     "claims": {"given_name": "An", "birthdate": "1990-02-03"}}  # fmt: skip
    nationalities = build(request(claims={"nationalities": None}))
    assert nationalities["claims"] == {"nationalities": ["VN"]}
    # A claim whose scope was not granted is not released, and a request left with no claim is omitted.
    assert build(request(claims={"given_name": None}), scopes={"openid"}) is None
    # A claim constrained to another value is left out (and with it, here, the whole verified_claims).
    assert build(request(claims={"given_name": {"value": "Bình"}})) is None
    assert build(request(claims={"given_name": {"value": "An"}, "family_name": {"value": "x"}}))["claims"] == {
        "given_name": "An"}  # fmt: skip


def test_trust_framework_and_assurance_level_constraints() -> None:
    assert build(request({"trust_framework": {"value": "eidas"}})) is None
    assert build(request({"trust_framework": {"values": ["eidas", "vn_eid"]}})) is not None
    assert build(request({"trust_framework": None, "assurance_level": {"value": "2"}})) is None
    level_2 = build(request({"trust_framework": None, "assurance_level": {"value": "2"}}), LEVEL_2)
    assert level_2["verification"] == {"trust_framework": "vn_eid", "assurance_level": "2"}
    # time with max_age (IDA §6.5): a verification older than asked for is omitted.
    at = 1_764_581_400.0  # 2025-12-01T09:30Z, a year before the in-person check below
    recent = request({"trust_framework": None, "time": {"max_age": 3600}})
    assert build(recent, LEVEL_2, now=at + 365 * 86400 + 1800) is not None
    assert build(recent, LEVEL_2, now=at + 365 * 86400 + 7200) is None


def test_evidence_as_requested() -> None:
    details = {"type": None, "document_number": None}
    document = {"type": {"value": "document"}, "check_details": None, "document_details": details}
    asked = request({"trust_framework": None, "time": None, "evidence": [document]})
    assert build(asked, LEVEL_1) is None  # level 1 holds no document evidence
    found = build(asked, LEVEL_2, scopes=PROFILE | {"national_id"})
    verification = found["verification"]
    assert verification["time"] == "2026-12-01T09:30:00Z"
    [evidence] = verification["evidence"]
    assert evidence["type"] == "document"
    assert evidence["document_details"] == {"type": "idcard", "document_number": "001090000001"}
    assert [c["check_method"] for c in evidence["check_details"]] == ["vpip", "pvp"]
    assert {c["organization"] for c in evidence["check_details"]} == {"Công an phường Ba Đình"}
    assert {c["txn"] for c in evidence["check_details"]} == {IN_PERSON.txn}
    # Without the national_id scope the card's number is not released.
    hidden = build(asked, LEVEL_2)["verification"]["evidence"][0]["document_details"]
    assert hidden == {"type": "idcard"}
    record = request({"trust_framework": None, "evidence": [{"type": {"value": "electronic_record"}, "record": None}]})
    level_1 = build(record, LEVEL_1)["verification"]["evidence"][0]
    assert level_1["type"] == "electronic_record"
    assert level_1["record"]["source"]["name"] == verified_claims.REGISTRY
    assert "personal_number" not in level_1["record"]
    # Only the elements asked for: here none beyond the type.
    bare = build(request({"trust_framework": None, "evidence": [{"type": None}]}), LEVEL_2)
    assert bare["verification"]["evidence"] == [{"type": "document"}]


def test_an_array_of_requests_gets_the_ones_that_match() -> None:
    raw = {"userinfo": {"verified_claims": [
        {"verification": {"trust_framework": {"value": "eidas"}}, "claims": {"given_name": None}},
        {"verification": {"trust_framework": {"value": "vn_eid"}}, "claims": {"family_name": None}},
    ]}}  # fmt: skip
    asked = claims_request.parse(json.dumps(raw)).userinfo["verified_claims"]
    assert build(asked) == [{"verification": {"trust_framework": "vn_eid"}, "claims": {"family_name": "Nguyễn"}}]


def _ring() -> tuple[KeyRing, dict]:
    key = ECKey.generate_key("P-256")
    kid = key.thumbprint()
    stored = StoredKey(kid, "ES256", b"", {**key.as_dict(private=False), "kid": kid, "alg": "ES256", "use": "sig"},
                       "next")  # fmt: skip
    ring = KeyRing([stored], sealer=None)  # type: ignore[arg-type]  # nothing current: nothing to open
    ring._signing["ES256"] = (kid, key)  # a test ring without a sealed store
    return ring, ring.jwks()


def test_signed_then_encrypted_userinfo_round_trip() -> None:
    ring, published = _ring()
    private = RSAKey.generate_key(2048, parameters={"kid": "enc-1", "use": "enc"})
    client = registration.userinfo_response(
        Client("portal-x", "x", "portal", ("authorization_code",), ("openid",), "client_secret_basic"),
        "ES256", "RSA-OAEP-256", "A256GCM", {"keys": [private.as_dict(private=False)]},
    )  # fmt: skip
    body = userinfo_jwt.encode({"sub": "s", "given_name": "An"}, client, "https://op.example", ring)
    decrypted = jwe.decrypt_compact(body, private, algorithms=["RSA-OAEP-256", "A256GCM"])
    assert decrypted.protected["cty"] == "JWT"
    assert decrypted.protected["kid"] == "enc-1"
    inner = jwt.decode(decrypted.plaintext, KeySet.import_key_set(published))
    assert inner.claims["iss"] == "https://op.example"
    assert inner.claims["aud"] == "portal-x"
    assert inner.claims["given_name"] == "An"


def test_registration_refuses_what_cannot_be_honoured() -> None:
    base = Client("portal-x", "x", "portal", ("authorization_code",), ("openid",), "client_secret_basic")
    with pytest.raises(InvalidArgument, match="signing"):
        registration.userinfo_response(base, "HS256")
    with pytest.raises(InvalidArgument, match="no public key"):
        registration.userinfo_response(base, None, "ECDH-ES")  # nothing to encrypt to
    with pytest.raises(InvalidArgument, match="needs userinfo_encrypted_response_alg"):
        registration.userinfo_response(base, None, None, "A128GCM")
    with pytest.raises(InvalidArgument, match="use enc"):
        registration.userinfo_response(base, None, "ECDH-ES", None, {"keys": [ECKey.generate_key("P-256").as_dict(
            private=False)]})  # fmt: skip
    private = ECKey.generate_key("P-256", parameters={"kid": "e", "use": "enc"})
    with pytest.raises(InvalidArgument, match="public keys only"):
        registration.userinfo_response(base, None, "ECDH-ES", None, {"keys": [private.as_dict(private=True)]})
    made = registration.userinfo_response(base, None, "ECDH-ES", None, {"keys": [private.as_dict(private=False)]})
    assert made.userinfo_encrypted_response_enc == "A128CBC-HS256"  # Registration §2's default


def test_a_level_2_account_without_a_record_claims_no_time_nor_evidence() -> None:
    found = build(request({"trust_framework": None, "assurance_level": None, "time": None, "evidence": None}),
                  Facts(2, "2026-11-30T08:00:00+00:00"))  # fmt: skip
    assert found["verification"] == {"trust_framework": "vn_eid", "assurance_level": "2"}
