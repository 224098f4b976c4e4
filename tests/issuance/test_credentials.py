"""SD-JWT VC issuance and verification (RFC 9901, IETF SD-JWT VC)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from core.errors import InvalidArgument
from issuance.credentials import (
    TYPE,
    VCT_CRIMINAL_RECORD,
    VCT_HEALTH_BOOK_EXTRACT,
    VerificationFailed,
    issue_credential,
    verify_credential,
)
from issuance.issuer_keys import SigningKey
from tests.issuance.sd_jwt_helpers import (
    AT,
    CLAIMS,
    HOLDER_KEY,
    ISSUER,
    ISSUER_KEY,
    STATUS,
    b64,
    b64json,
    issued,
    sign_jws,
)

JWKS = ISSUER_KEY.jwks()
LATER = AT + timedelta(days=30)


def _digest(disclosure: str) -> str:
    return b64(hashlib.sha256(disclosure.encode("ascii")).digest())


def _base_payload(**extra: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "iss": ISSUER,
        "iat": int(AT.timestamp()),
        "vct": VCT_CRIMINAL_RECORD,
        "cnf": {"jwk": {k: v for k, v in HOLDER_KEY.public_jwk.items() if k in ("kty", "crv", "x", "y")}},
        "status": STATUS.claim(),
        "_sd_alg": "sha-256",
    }
    payload.update(extra)
    return payload


def _header(**extra: object) -> dict[str, object]:
    return {"alg": "ES256", "typ": TYPE, "kid": ISSUER_KEY.kid, **extra}


def test_a_certificate_round_trips_with_every_claim_disclosed() -> None:
    verified = verify_credential(issued(), JWKS, at=LATER)
    assert verified.claims == CLAIMS
    assert verified.issuer == ISSUER
    assert verified.vct == VCT_CRIMINAL_RECORD
    assert verified.kid == ISSUER_KEY.kid
    assert verified.issued_at == AT
    assert verified.expires_at == AT + timedelta(days=365)
    assert verified.status == STATUS
    assert verified.holder_jwk == {k: HOLDER_KEY.public_jwk[k] for k in ("kty", "crv", "x", "y")}
    extract = issued(vct=VCT_HEALTH_BOOK_EXTRACT, claims={"full_name": "Lê Văn Tám", "diagnoses": ["J06.9"]})
    assert verify_credential(extract, JWKS, at=LATER).claims == {"full_name": "Lê Văn Tám", "diagnoses": ["J06.9"]}


def test_the_issued_form_has_the_shapes_of_rfc_9901_and_sd_jwt_vc() -> None:
    serialized = issued()
    assert serialized.endswith("~")  # <Issuer-signed JWT>~<Disclosure 1>~...~<Disclosure N>~ (RFC 9901 §4)
    jwt, *disclosures, last = serialized.split("~")
    assert last == ""
    header, payload, _ = jwt.split(".")
    assert b64json(header) == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": ISSUER_KEY.kid}
    claims = b64json(payload)
    assert set(claims) == {"iss", "iat", "exp", "vct", "cnf", "status", "_sd", "_sd_alg"}
    assert claims["_sd_alg"] == "sha-256"
    assert claims["vct"] == "urn:dinhdanh:vct:criminal-record-certificate:1"
    assert claims["status"] == {"status_list": {"idx": 42, "uri": STATUS.uri}}
    assert set(claims["cnf"]) == {"jwk"}
    assert "d" not in claims["cnf"]["jwk"]
    assert len(disclosures) == len(CLAIMS)
    assert len(claims["_sd"]) >= len(CLAIMS) + 2, "decoy digests are added (RFC 9901 §4.2.5)"
    assert claims["_sd"] == sorted(claims["_sd"])
    names = set()
    for disclosure in disclosures:
        salt, name, value = b64json(disclosure)
        assert len(salt) >= 22  # 128 bits of salt (RFC 9901 §4.2.1)
        assert CLAIMS[name] == value
        assert _digest(disclosure) in claims["_sd"]
        names.add(name)
    assert names == set(CLAIMS)
    assert "Nghệ An" not in serialized.split("~")[0]


def test_the_rfc_9901_example_disclosures_verify() -> None:
    # RFC 9901 §4.2.3: an object property disclosure and its digest; §4.2.2/§4.2.4: an array element
    family = "WyI2cU1RdlJMNWhhaiIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    assert _digest(family) == "uutlBuYeMDyjLLTpf6Jxi7yNkEF35jdyWMn9U7b_RYY"
    france = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0"
    assert _digest(france) == "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"
    payload = _base_payload(_sd=[_digest(family)], nationalities=[{"...": _digest(france)}, "DE"])
    token = sign_jws(_header(), payload)
    verified = verify_credential(f"{token}~{family}~{france}~", JWKS, at=LATER)
    assert verified.claims == {"family_name": "Möbius", "nationalities": ["FR", "DE"]}
    assert verify_credential(f"{token}~", JWKS, at=LATER).claims == {"nationalities": ["DE"]}


def test_a_tampered_disclosure_fails() -> None:
    jwt, *disclosures, _ = issued().split("~")
    salt, name, _value = b64json(disclosures[0])
    forged = b64([salt, name, "Someone else"])
    with pytest.raises(VerificationFailed, match="not referenced"):
        verify_credential("~".join([jwt, forged, *disclosures[1:], ""]), JWKS, at=LATER)
    foreign = b64(["c2FsdHNhbHRzYWx0c2FsdA", "criminal_record", "Không có án tích"])
    with pytest.raises(VerificationFailed, match="not referenced"):
        verify_credential("~".join([jwt, *disclosures, foreign, ""]), JWKS, at=LATER)
    with pytest.raises(VerificationFailed, match=r"[Dd]uplicate"):
        verify_credential("~".join([jwt, disclosures[0], disclosures[0], ""]), JWKS, at=LATER)
    with pytest.raises(VerificationFailed, match="disclosure"):
        verify_credential("~".join([jwt, "not-json", ""]), JWKS, at=LATER)


def test_a_tampered_payload_or_signature_fails() -> None:
    serialized = issued()
    jwt, rest = serialized.split("~", 1)
    header, payload, signature = jwt.split(".")
    claims = b64json(payload)
    claims["exp"] = claims["exp"] + 10 * 365 * 86400
    with pytest.raises(VerificationFailed, match="signature"):
        verify_credential(f"{header}.{b64(claims)}.{signature}~{rest}", JWKS, at=LATER)
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(VerificationFailed, match="signature"):
        verify_credential(f"{header}.{payload}.{flipped}~{rest}", JWKS, at=LATER)
    other = SigningKey.from_seed(b"\x09" * 32)
    with pytest.raises(VerificationFailed, match="unknown kid"):
        verify_credential(serialized, other.jwks(), at=LATER)
    impostor = {"keys": [{**other.public_jwk, "kid": ISSUER_KEY.kid}]}
    with pytest.raises(VerificationFailed, match="signature"):
        verify_credential(serialized, impostor, at=LATER)


def test_a_wrong_typ_or_alg_fails() -> None:
    for typ in ("vc+sd-jwt", "JWT", "example+sd-jwt", None):
        header = _header(typ=typ) if typ else {"alg": "ES256", "kid": ISSUER_KEY.kid}
        with pytest.raises(VerificationFailed, match="typ"):
            verify_credential(sign_jws(header, _base_payload()) + "~", JWKS, at=LATER)
    unsigned = b64({"alg": "none", "typ": TYPE, "kid": ISSUER_KEY.kid}) + "." + b64(_base_payload()) + "."
    with pytest.raises(VerificationFailed, match="ES256"):
        verify_credential(unsigned + "~", JWKS, at=LATER)


def test_vct_issuer_and_times_are_checked() -> None:
    with pytest.raises(VerificationFailed, match="vct"):
        verify_credential(issued(), JWKS, at=LATER, vcts={VCT_HEALTH_BOOK_EXTRACT})
    with pytest.raises(VerificationFailed, match="issuer"):
        verify_credential(issued(), JWKS, at=LATER, issuer="https://elsewhere.example")
    with pytest.raises(VerificationFailed, match="expired"):
        verify_credential(issued(), JWKS, at=AT + timedelta(days=366))
    with pytest.raises(VerificationFailed, match="future"):
        verify_credential(issued(), JWKS, at=AT - timedelta(hours=1))
    no_expiry = issued(expires_at=None)
    assert verify_credential(no_expiry, JWKS, at=AT + timedelta(days=3650)).expires_at is None
    with pytest.raises(VerificationFailed, match="vct"):
        verify_credential(sign_jws(_header(), _base_payload(vct="urn:other")) + "~", JWKS, at=LATER)
    with pytest.raises(VerificationFailed, match="cnf"):
        verify_credential(sign_jws(_header(), _base_payload(cnf={"kid": "x"})) + "~", JWKS, at=LATER)


def test_disclosures_may_not_smuggle_reserved_names() -> None:
    for name in ("_sd", "...", "iss", "vct", "status"):
        disclosure = b64(["c2FsdHNhbHRzYWx0c2FsdA", name, "x"])
        token = sign_jws(_header(), _base_payload(_sd=[_digest(disclosure)]))
        with pytest.raises(VerificationFailed):
            verify_credential(f"{token}~{disclosure}~", JWKS, at=LATER)


def test_a_key_binding_jwt_is_not_part_of_an_issued_credential() -> None:
    with pytest.raises(VerificationFailed, match="presentation"):
        verify_credential(issued() + "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", JWKS, at=LATER)


def test_malformed_input_is_refused_clearly() -> None:
    for garbage in ("", "garbage", "a.b.c", "~~~", "a.b~", 42):
        with pytest.raises(VerificationFailed):
            verify_credential(garbage, JWKS, at=LATER)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        verify_credential(issued(), {"nope": 1}, at=LATER)


def test_bad_issuance_requests_are_refused() -> None:
    for name in ("iss", "iat", "exp", "nbf", "vct", "cnf", "status", "_sd", "_sd_alg", "..."):
        with pytest.raises(InvalidArgument, match="reserved"):
            issued(claims={**CLAIMS, name: "x"})
    with pytest.raises(InvalidArgument, match="_sd"):
        issued(claims={"convictions": [{"_sd": ["x"]}]})
    with pytest.raises(InvalidArgument, match="vct"):
        issued(vct="not a vct")
    with pytest.raises(InvalidArgument, match="public"):
        issued(holder_jwk={**HOLDER_KEY.public_jwk, "d": "secret"})
    with pytest.raises(InvalidArgument, match="expire"):
        issued(expires_at=AT)
    with pytest.raises(InvalidArgument, match="at least one claim"):
        issued(claims={})
    with pytest.raises(InvalidArgument, match="JSON"):
        issued(claims={"when": AT})
    assert issue_credential  # the public name the service calls


def test_a_signed_payload_that_is_not_an_object_fails() -> None:
    for payload in ([1, 2], "text", 5):
        with pytest.raises(VerificationFailed, match="payload is not a JSON object"):
            verify_credential(sign_jws(_header(), payload) + "~", JWKS, at=LATER)  # type: ignore[arg-type]


def test_a_verified_credentials_status_reads_valid_revoked_or_suspended_from_its_list() -> None:
    from issuance.status_list import Status, StatusList, credential_status, sign_status_list, verify_status_list

    verified = verify_credential(issued(), JWKS, at=LATER)
    assert verified.status is not None
    status_list = StatusList.new(1024, 2)
    for expected in (Status.VALID, Status.INVALID, Status.SUSPENDED, Status.VALID):
        status_list.set(verified.status.idx, expected)
        token = sign_status_list(ISSUER_KEY, status_list, uri=verified.status.uri, at=LATER, ttl=timedelta(hours=1))
        published = verify_status_list(token, JWKS, uri=verified.status.uri, at=LATER)
        assert credential_status(verified.status, published) is expected
