"""The offline QR payload (after the EU DCC's HCERT: CWT in COSE_Sign1, zlib, Base45, a prefix)."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta

import cbor2
import pytest

from core.errors import InvalidArgument
from issuance.issuer_keys import SigningKey
from issuance.qr import (
    CLAIM_CERTIFICATE,
    DOC_CRIMINAL_RECORD_1,
    DOC_HEALTH_BOOK_EXTRACT,
    PREFIX,
    QrFields,
    QrVerifier,
    base45_decode,
    base45_encode,
    encode_qr,
    id_last_digits,
    qr_version,
    render_qr,
    verifications_per_second,
    verify_qr,
)

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ISSUER = "https://dinhdanh.example/issuers/lltp"
KEY = SigningKey.from_seed(b"\x31" * 32)
JWKS = KEY.jwks()
FIELDS = QrFields(
    document_type=DOC_CRIMINAL_RECORD_1,
    holder_name="Nguyễn Thị Minh Khai",
    id_last_digits=id_last_digits("001190012345"),
    convictions=0,
    issued_on=date(2026, 12, 1),
    certificate_id="LLTP-2026-000042",
    status_index=42,
)


def _text(fields: QrFields = FIELDS, key: SigningKey = KEY, **extra: object) -> str:
    arguments: dict[str, object] = {"issuer": ISSUER, "issued_at": AT, "expires_at": AT + timedelta(days=180)}
    arguments.update(extra)
    return encode_qr(key, fields, **arguments)  # type: ignore[arg-type]


def _sign1_of(text: str) -> cbor2.CBORTag:
    return cbor2.loads(zlib.decompress(base45_decode(text.removeprefix(PREFIX))))


def test_the_base45_vectors_of_rfc_9285() -> None:
    # RFC 9285 §4.1–§4.3 (the encoding examples) and §4.4 (the decoding example)
    assert base45_encode(b"AB") == "BB8"
    assert base45_encode(b"Hello!!") == "%69 VD92EX0"
    assert base45_encode(b"base-45") == "UJCLQE7W581"
    assert base45_decode("QED8WEX0") == b"ietf!"
    for bad in (":::", "GG", "a", "AB!", "Q"):
        with pytest.raises(InvalidArgument, match="Base45"):
            base45_decode(bad)


def test_a_certificate_round_trips_offline() -> None:
    text = _text()
    assert text.startswith("VN1:")
    verified = verify_qr(text, JWKS, at=AT + timedelta(days=1))
    assert verified.fields == FIELDS
    assert verified.issuer == ISSUER
    assert verified.issued_at == AT
    assert verified.expires_at == AT + timedelta(days=180)
    assert verified.kid == KEY.kid
    assert verified.fields.result_text == "Không có án tích"
    assert FIELDS.id_last_digits == "2345"
    with_convictions = QrFields(**{**_as_dict(FIELDS), "convictions": 2, "status_uri": "https://dd.example/sl/1"})
    again = verify_qr(_text(with_convictions), JWKS, at=AT)
    assert again.fields == with_convictions
    assert again.fields.result_text == "Có 2 án tích"
    extract = QrFields(**{**_as_dict(FIELDS), "document_type": DOC_HEALTH_BOOK_EXTRACT, "convictions": None})
    assert verify_qr(_text(extract, expires_at=None), JWKS, at=AT + timedelta(days=3650)).fields == extract


def _as_dict(fields: QrFields) -> dict[str, object]:
    return {name: getattr(fields, name) for name in QrFields.__dataclass_fields__}


def test_the_payload_is_a_cwt_in_a_cose_sign1_with_es256_and_a_kid() -> None:
    sign1 = _sign1_of(_text())
    assert sign1.tag == 18  # COSE_Sign1 (RFC 9052 §4.2)
    protected, unprotected, payload, signature = sign1.value
    assert cbor2.loads(protected) == {1: -7, 4: KEY.cose_kid}  # alg ES256, kid
    assert len(KEY.cose_kid) == 8
    assert dict(unprotected) == {}
    assert len(signature) == 64
    claims = cbor2.loads(payload)
    assert claims[1] == ISSUER  # iss (RFC 8392 §3.1.1)
    assert claims[6] == int(AT.timestamp())  # iat
    assert claims[4] == int((AT + timedelta(days=180)).timestamp())  # exp
    assert set(claims[CLAIM_CERTIFICATE]) == {1, 2, 3, 4, 5, 6, 7}
    assert "001190012345" not in repr(claims)


def test_a_typical_certificate_fits_a_small_qr() -> None:
    text = _text()
    version = qr_version(text)
    print(f"\nQR payload for a typical certificate: {len(text)} characters, QR version {version}")
    assert len(text) < 400
    assert version <= 15
    png, svg = render_qr(text, kind="png"), render_qr(text, kind="svg")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in svg
    with pytest.raises(InvalidArgument, match="png or svg"):
        render_qr(text, kind="gif")


def test_a_tampered_payload_is_refused() -> None:
    text = _text()
    body = bytearray(zlib.decompress(base45_decode(text.removeprefix(PREFIX))))
    refused = 0
    for position in range(len(body)):
        tampered = bytearray(body)
        tampered[position] ^= 0x01
        forged = PREFIX + base45_encode(zlib.compress(bytes(tampered), 9))
        with pytest.raises(InvalidArgument):
            verify_qr(forged, JWKS, at=AT)
        refused += 1
    assert refused == len(body)
    name_at = body.find(b"Minh")
    tampered = bytearray(body)
    tampered[name_at] = ord("N")
    with pytest.raises(InvalidArgument, match="signature"):
        verify_qr(PREFIX + base45_encode(zlib.compress(bytes(tampered), 9)), JWKS, at=AT)


def test_a_wrongly_signed_or_unknown_key_payload_is_refused() -> None:
    other = SigningKey.from_seed(b"\x32" * 32)
    with pytest.raises(InvalidArgument, match="unknown kid"):
        verify_qr(_text(key=other), JWKS, at=AT)
    _protected, _unprotected, payload, _signature = _sign1_of(_text(key=other)).value
    honest_protected = cbor2.dumps({1: -7, 4: KEY.cose_kid})
    forged = cbor2.dumps(cbor2.CBORTag(18, [honest_protected, {}, payload, _sign1_of(_text(key=other)).value[3]]))
    with pytest.raises(InvalidArgument, match="signature"):
        verify_qr(PREFIX + base45_encode(zlib.compress(forged)), JWKS, at=AT)
    es384 = cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -35, 4: KEY.cose_kid}), {}, payload, b"\x00" * 96]))
    with pytest.raises(InvalidArgument, match="ES256"):
        verify_qr(PREFIX + base45_encode(zlib.compress(es384)), JWKS, at=AT)
    unprotected_kid = cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -7}), {4: KEY.cose_kid}, payload, b"\x00" * 64]))
    with pytest.raises(InvalidArgument, match="kid"):
        verify_qr(PREFIX + base45_encode(zlib.compress(unprotected_kid)), JWKS, at=AT)


def test_bad_text_is_refused_clearly() -> None:
    text = _text()
    with pytest.raises(InvalidArgument, match="prefix"):
        verify_qr("HC1:" + text.removeprefix(PREFIX), JWKS, at=AT)
    with pytest.raises(InvalidArgument, match="Base45"):
        verify_qr(PREFIX + "abc", JWKS, at=AT)
    with pytest.raises(InvalidArgument, match="zlib"):
        verify_qr(PREFIX + base45_encode(b"not compressed"), JWKS, at=AT)
    with pytest.raises(InvalidArgument, match="COSE_Sign1"):
        verify_qr(PREFIX + base45_encode(zlib.compress(cbor2.dumps([1, 2, 3]))), JWKS, at=AT)
    with pytest.raises(InvalidArgument, match="large"):
        verify_qr(PREFIX + base45_encode(zlib.compress(b"\x00" * 100_000)), JWKS, at=AT)
    with pytest.raises(InvalidArgument, match="expired"):
        verify_qr(text, JWKS, at=AT + timedelta(days=181))
    with pytest.raises(InvalidArgument, match="future"):
        verify_qr(text, JWKS, at=AT - timedelta(days=1))
    for garbage in ("", "VN1:", 42, PREFIX + "\u00e9"):
        with pytest.raises(InvalidArgument):
            verify_qr(garbage, JWKS, at=AT)  # type: ignore[arg-type]


def test_the_fields_are_checked_when_encoding() -> None:
    with pytest.raises(InvalidArgument, match="12 digits"):
        id_last_digits("12345")
    for bad in (
        {"id_last_digits": "12345"},
        {"holder_name": ""},
        {"convictions": -1},
        {"status_index": -1},
        {"certificate_id": ""},
        {"document_type": ""},
        {"issued_on": "2026-12-01"},
    ):
        with pytest.raises(InvalidArgument):
            QrFields(**{**_as_dict(FIELDS), **bad})  # type: ignore[arg-type]


def test_a_verifier_built_once_verifies_many_and_the_benchmark_helper_reports_a_rate() -> None:
    verifier = QrVerifier(JWKS)
    text = _text()
    assert all(verifier.verify(text, at=AT).fields == FIELDS for _ in range(20))
    rate = verifications_per_second(seconds=0.2)
    print(f"\noffline QR verifications: {rate:,.0f} a second")
    assert rate > 0
