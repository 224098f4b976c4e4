"""Selective disclosure with key binding (RFC 9901 §4.3, §7.3): the holder shows chosen claims only."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from core.errors import InvalidArgument
from issuance.credentials import VerificationFailed
from issuance.issuer_keys import SigningKey
from issuance.presentations import KB_TYPE, key_binding_jwt, present, verify_presentation
from tests.issuance.sd_jwt_helpers import AT, CLAIMS, HOLDER_KEY, ISSUER_KEY, b64, b64json, decoded_text, issued

JWKS = ISSUER_KEY.jwks()
AUDIENCE = "https://bank.example/verifier"
NONCE = "n-0S6_WzA2Mj"
SHOWN_AT = AT + timedelta(days=3)
CHOSEN = ("full_name", "criminal_record")


def _shared(**overrides: object) -> str:
    arguments: dict[str, object] = {"disclose": CHOSEN, "audience": AUDIENCE, "nonce": NONCE, "at": SHOWN_AT}
    arguments.update(overrides)
    return present(issued(), HOLDER_KEY, **arguments)  # type: ignore[arg-type]


def _verify(presentation: str, **overrides: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {"audience": AUDIENCE, "nonce": NONCE, "at": SHOWN_AT + timedelta(seconds=20)}
    arguments.update(overrides)
    return verify_presentation(presentation, JWKS, **arguments)  # type: ignore[arg-type]


def test_a_presentation_shows_the_chosen_claims_only() -> None:
    presentation = _shared()
    verified = _verify(presentation)
    assert verified.credential.claims == {name: CLAIMS[name] for name in CHOSEN}
    assert verified.audience == AUDIENCE
    assert verified.nonce == NONCE
    assert verified.presented_at == SHOWN_AT
    text = decoded_text(presentation)
    for name, value in CLAIMS.items():
        if name in CHOSEN:
            assert str(value) in text
        elif isinstance(value, str):
            assert value not in text, f"{name} leaks"
            assert name not in text, f"the name of {name} leaks"
    assert "Nghệ An" not in text
    assert "Trần Thị Lụa" not in text


def test_the_key_binding_jwt_has_the_rfc_9901_shape() -> None:
    presentation = _shared()
    sd_jwt, kb_jwt = presentation[: presentation.rfind("~") + 1], presentation[presentation.rfind("~") + 1 :]
    header, payload, _ = kb_jwt.split(".")
    assert b64json(header) == {"alg": "ES256", "typ": "kb+jwt"}
    claims = b64json(payload)
    assert set(claims) == {"iat", "aud", "nonce", "sd_hash"}
    assert claims["sd_hash"] == b64(hashlib.sha256(sd_jwt.encode("ascii")).digest())
    assert claims["iat"] == int(SHOWN_AT.timestamp())
    assert claims["aud"] == AUDIENCE
    assert claims["nonce"] == NONCE
    assert len(sd_jwt.split("~")) == 2 + len(CHOSEN)


def test_disclosing_nothing_still_proves_the_credential_and_the_holder() -> None:
    verified = _verify(_shared(disclose=()))
    assert verified.credential.claims == {}
    assert verified.credential.vct.endswith("criminal-record-certificate:1")


def test_a_presentation_without_a_key_binding_jwt_fails() -> None:
    presentation = _shared()
    without = presentation[: presentation.rfind("~") + 1]
    with pytest.raises(VerificationFailed, match="no Key Binding JWT"):
        _verify(without)
    with pytest.raises(VerificationFailed, match="no Key Binding JWT"):
        _verify(issued())


def test_a_key_binding_jwt_by_another_key_fails() -> None:
    presentation = _shared()
    sd_jwt = presentation[: presentation.rfind("~") + 1]
    thief = SigningKey.from_seed(b"\x07" * 32)
    forged = sd_jwt + key_binding_jwt(thief, sd_jwt, audience=AUDIENCE, nonce=NONCE, at=SHOWN_AT)
    with pytest.raises(VerificationFailed, match="holder key"):
        _verify(forged)
    with pytest.raises(InvalidArgument, match="holder key"):
        present(issued(), thief, disclose=CHOSEN, audience=AUDIENCE, nonce=NONCE, at=SHOWN_AT)


def test_wrong_audience_nonce_or_time_fails() -> None:
    presentation = _shared()
    with pytest.raises(VerificationFailed, match="aud"):
        _verify(presentation, audience="https://other.example")
    with pytest.raises(VerificationFailed, match="nonce"):
        _verify(presentation, nonce="another-nonce")
    with pytest.raises(VerificationFailed, match="stale"):
        _verify(presentation, at=SHOWN_AT + timedelta(minutes=10))
    with pytest.raises(VerificationFailed, match="future"):
        _verify(presentation, at=SHOWN_AT - timedelta(minutes=10))
    assert _verify(presentation, at=SHOWN_AT + timedelta(minutes=10), max_age=timedelta(minutes=15))


def test_a_tampered_sd_hash_or_a_changed_disclosure_set_fails() -> None:
    presentation = _shared()
    sd_jwt = presentation[: presentation.rfind("~") + 1]
    other = _shared(disclose=("full_name",))
    other_sd_jwt = other[: other.rfind("~") + 1]
    mismatched = sd_jwt + key_binding_jwt(HOLDER_KEY, other_sd_jwt, audience=AUDIENCE, nonce=NONCE, at=SHOWN_AT)
    with pytest.raises(VerificationFailed, match="sd_hash"):
        _verify(mismatched)
    jwt, *disclosures, kb = presentation.split("~")
    with pytest.raises(VerificationFailed, match="sd_hash"):
        _verify("~".join([jwt, disclosures[0], kb]))  # a disclosure dropped after binding
    head, payload, signature = kb.split(".")
    claims = b64json(payload)
    claims["sd_hash"] = b64(hashlib.sha256(b"x").digest())
    with pytest.raises(VerificationFailed, match="signature"):
        _verify("~".join([jwt, *disclosures, f"{head}.{b64(claims)}.{signature}"]))


def test_a_key_binding_jwt_of_another_type_fails() -> None:
    from joserfc import jwt as joserfc_jwt

    presentation = _shared()
    sd_jwt = presentation[: presentation.rfind("~") + 1]
    claims = {"iat": int(SHOWN_AT.timestamp()), "aud": AUDIENCE, "nonce": NONCE,
              "sd_hash": b64(hashlib.sha256(sd_jwt.encode()).digest())}  # fmt: skip
    token = joserfc_jwt.encode({"alg": "ES256", "typ": "JWT"}, claims, HOLDER_KEY.private, algorithms=["ES256"])
    with pytest.raises(VerificationFailed, match=KB_TYPE.replace("+", "\\+")):
        _verify(sd_jwt + token)
    with pytest.raises(VerificationFailed):
        _verify(sd_jwt + "not.a.jwt")


def test_the_issuer_part_of_a_presentation_is_still_verified() -> None:
    presentation = _shared()
    other_issuer = SigningKey.from_seed(b"\x08" * 32)
    with pytest.raises(VerificationFailed, match="unknown kid"):
        verify_presentation(presentation, other_issuer.jwks(), audience=AUDIENCE, nonce=NONCE, at=SHOWN_AT)
    with pytest.raises(VerificationFailed, match="expired"):
        _verify(_shared(at=AT + timedelta(days=400)), at=AT + timedelta(days=400))


def test_bad_presentation_requests_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="no claim named"):
        _shared(disclose=("full_name", "shoe_size"))
    with pytest.raises(InvalidArgument, match="nonce"):
        _shared(nonce="")
    with pytest.raises(InvalidArgument, match="audience"):
        _shared(audience="")
    with pytest.raises(InvalidArgument):
        present("garbage", HOLDER_KEY, disclose=CHOSEN, audience=AUDIENCE, nonce=NONCE, at=SHOWN_AT)
