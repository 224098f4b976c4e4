"""The offline QR payload: a certificate's essentials, signed, verifiable with the issuer's published keys only.

In the manner of the EU Digital COVID Certificate (eHealth Network, HCERT specification v1.0.5 §2–3):

1. the fields are a CBOR map (RFC 8949) under the private-use claim ``-65537`` (RFC 8392 §9.1: keys below
   −65536 are private) of a CBOR Web Token with ``iss`` (1), ``iat`` (6) and ``exp`` (4, optional);
2. the CWT is the payload of a tagged COSE_Sign1 (RFC 9052 §4.2, tag 18) whose protected header is
   ``{1: -7, 4: kid}`` — ES256 (RFC 9053 §2.1) and the 8-byte COSE ``kid`` of the issuer key
   (``issuance.issuer_keys.cose_kid``); the unprotected header is empty (a ``kid`` there is refused, as it
   would be unauthenticated);
3. the COSE bytes are zlib-compressed (RFC 1950), Base45-encoded (RFC 9285) and prefixed ``VN1:`` (as HCERT's
   ``HC1:``). Base45's alphabet is the QR alphanumeric set, so the QR holds it at 5.5 bits a character.

``pycose`` builds and parses the COSE_Sign1 and its Sig_structure (RFC 9052 §4.4); the ECDSA itself is done
with ``cryptography`` (OpenSSL), as pycose's ES256 runs on the pure-Python ``ecdsa`` package at some 170
verifications a second, far below the 1,000 a second a verifier must manage. ``cbor2`` 6 decodes a tag's array
as a tuple, which ``pycose.CoseMessage.decode`` refuses, so the outer structure is parsed here (strictly: a
tag-18 array of four) and handed to ``Sign1Message.from_cose_obj``.

The fields (``QrFields``, map keys 1–8): document type (1), holder name (2), the last four digits of the ID
number (3), the number of convictions shown (4: 0 reads "Không có án tích"; absent for a health-book extract),
issue date (5, days since 1970-01-01), certificate id (6), status list index (7) and, optionally, the status
list URI (8). The ID number is reduced to its last four digits on purpose: a verifier offline compares them
with the ID card the holder shows, as it compares the name; the full number would put a national identifier
on every printed certificate for anyone with a camera (personal data, Decree 13/2023/NĐ-CP), and a keyed
reference (an HMAC) could be checked only by someone holding the key — online, which defeats the point — while
being a stable pseudonym linking every certificate of one person.
"""

from __future__ import annotations

import io
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import base45
import cbor2
import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from PIL import Image
from pycose.algorithms import Es256
from pycose.exceptions import CoseException
from pycose.headers import KID, Algorithm
from pycose.messages import Sign1Message

from core.errors import InvalidArgument
from issuance.issuer_keys import SigningKey, cose_kid, jwks_keys, public_key

PREFIX = "VN1:"
CLAIM_CERTIFICATE = -65537
COSE_SIGN1_TAG = 18
CWT_ISS, CWT_EXP, CWT_IAT = 1, 4, 6
DOC_CRIMINAL_RECORD_1 = "LLTP1"  # Phiếu lý lịch tư pháp số 1
DOC_CRIMINAL_RECORD_2 = "LLTP2"  # Phiếu lý lịch tư pháp số 2
DOC_HEALTH_BOOK_EXTRACT = "SSKD"  # trích lục Sổ sức khỏe điện tử
MAX_COMPRESSED = 4096
MAX_INFLATED = 8192
MAX_TEXT = 2 * MAX_COMPRESSED
MAX_NAME = 100
MAX_ID = 64
MAX_URI = 256
MAX_INDEX = 1 << 24
CLOCK_SKEW = timedelta(minutes=5)
EPOCH = date(1970, 1, 1)
ERROR_CORRECTION = "q"  # 25 % of the symbol restorable; segno raises it when that costs no size
MASK = 2
"""The data mask (ISO/IEC 18004:2015 §7.8), fixed: every mask pattern is valid and every reader applies the one
the format information names; segno's choice by penalty score (evaluating all eight) cost some 16 of the 20 ms of
making a certificate's symbol, and pattern 2 is the one it most often picks for these payloads."""
_FIELD_KEYS = {1, 2, 3, 4, 5, 6, 7, 8}


def base45_encode(data: bytes) -> str:
    """Base45 (RFC 9285 §4) of ``data``."""
    return base45.b45encode(data).decode("ascii")


def base45_decode(text: str) -> bytes:
    """The bytes Base45 ``text`` encodes; ``InvalidArgument`` for anything RFC 9285 §4 does not allow."""
    try:
        return bytes(base45.b45decode(text))
    except (ValueError, TypeError, KeyError):
        raise InvalidArgument("not Base45 text (RFC 9285)") from None


def id_last_digits(id_number: str) -> str:
    """The last four digits of a 12-digit ID number (see the module docstring for why only those)."""
    if not isinstance(id_number, str) or len(id_number) != 12 or not id_number.isdigit() or not id_number.isascii():
        raise InvalidArgument("an ID number is 12 digits")
    return id_number[-4:]


@dataclass(frozen=True, slots=True)
class QrFields:
    """What the QR says of a certificate."""

    document_type: str
    holder_name: str
    id_last_digits: str
    convictions: int | None
    issued_on: date
    certificate_id: str
    status_index: int
    status_uri: str | None = None

    def __post_init__(self) -> None:
        _text(self.document_type, "document_type", 16, ascii_only=True)
        _text(self.holder_name, "holder_name", MAX_NAME)
        if (
            not isinstance(self.id_last_digits, str)
            or len(self.id_last_digits) != 4
            or not _digits(self.id_last_digits)
        ):
            raise InvalidArgument("id_last_digits is the last 4 digits of the ID number")
        if self.convictions is not None and (not _is_int(self.convictions) or not 0 <= self.convictions <= 1000):
            raise InvalidArgument("convictions is a count 0..1000 (or None where it does not apply)")
        if not isinstance(self.issued_on, date) or isinstance(self.issued_on, datetime):
            raise InvalidArgument("issued_on is a date")
        _text(self.certificate_id, "certificate_id", MAX_ID, ascii_only=True)
        if not _is_int(self.status_index) or not 0 <= self.status_index < MAX_INDEX:
            raise InvalidArgument(f"status_index is 0..{MAX_INDEX - 1}")
        if self.status_uri is not None:
            _text(self.status_uri, "status_uri", MAX_URI, ascii_only=True)

    @property
    def result_text(self) -> str | None:
        """The result as the certificate states it ("Không có án tích" or "Có n án tích")."""
        if self.convictions is None:
            return None
        return "Không có án tích" if self.convictions == 0 else f"Có {self.convictions} án tích"

    def to_cbor_map(self) -> dict[int, Any]:
        fields: dict[int, Any] = {
            1: self.document_type,
            2: self.holder_name,
            3: self.id_last_digits,
            5: (self.issued_on - EPOCH).days,
            6: self.certificate_id,
            7: self.status_index,
        }
        if self.convictions is not None:
            fields[4] = self.convictions
        if self.status_uri is not None:
            fields[8] = self.status_uri
        return fields

    @classmethod
    def from_cbor_map(cls, fields: Any) -> QrFields:
        if not isinstance(fields, dict) or not set(fields) <= _FIELD_KEYS:
            raise InvalidArgument("the QR's certificate fields are not a map of the known keys")
        days = fields.get(5)
        if not _is_int(days) or not 0 <= days <= 200_000:
            raise InvalidArgument("the QR's issue date is not a day number")
        return cls(
            document_type=fields.get(1),  # type: ignore[arg-type]
            holder_name=fields.get(2),  # type: ignore[arg-type]
            id_last_digits=fields.get(3),  # type: ignore[arg-type]
            convictions=fields.get(4),
            issued_on=EPOCH + timedelta(days=days),
            certificate_id=fields.get(6),  # type: ignore[arg-type]
            status_index=fields.get(7),  # type: ignore[arg-type]
            status_uri=fields.get(8),
        )


@dataclass(frozen=True, slots=True)
class VerifiedQr:
    """A QR payload whose signature verified: the fields and who signed them when."""

    fields: QrFields
    issuer: str
    issued_at: datetime
    expires_at: datetime | None
    kid: str  # the JWS kid of the issuer key that verified it (in the published JWK Set)


def encode_qr(
    key: SigningKey,
    fields: QrFields,
    *,
    issuer: str,
    issued_at: datetime,
    expires_at: datetime | None = None,
) -> str:
    """The QR text (``VN1:`` + Base45) of ``fields`` signed by ``key``."""
    if not isinstance(fields, QrFields):
        raise InvalidArgument("fields must be QrFields")
    _text(issuer, "issuer", MAX_URI, ascii_only=True)
    claims: dict[int, Any] = {CWT_ISS: issuer, CWT_IAT: _seconds(issued_at)}
    if expires_at is not None:
        if expires_at <= issued_at:
            raise InvalidArgument("the QR must expire after it is issued")
        claims[CWT_EXP] = _seconds(expires_at)
    claims[CLAIM_CERTIFICATE] = fields.to_cbor_map()
    message = Sign1Message(phdr={Algorithm: Es256, KID: key.cose_kid}, payload=cbor2.dumps(claims, canonical=True))
    der = key.private.private_key.sign(message._create_sig_structure(), ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]
    r, s = decode_dss_signature(der)
    message.signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # RFC 9053 §2.1: r ‖ s, 32 bytes each
    encoded = message.encode(tag=True, sign=False)
    return PREFIX + base45_encode(zlib.compress(encoded, 9))


class QrVerifier:
    """Verifies QR payloads offline against an issuer's published JWK Set (built once, used for many)."""

    __slots__ = ("_keys",)

    def __init__(self, jwks: dict[str, Any]) -> None:
        keys: dict[bytes, tuple[str, ec.EllipticCurvePublicKey]] = {}
        for jwk in jwks_keys(jwks):
            verifying = public_key(jwk).public_key
            keys[cose_kid(jwk)] = (str(jwk.get("kid", "")), verifying)  # type: ignore[assignment]
        self._keys = keys

    def verify(self, text: str, *, at: datetime) -> VerifiedQr:
        """The fields of QR ``text`` after checking prefix, Base45, zlib, COSE_Sign1 with ES256 and a known
        ``kid``, the signature, and the CWT's ``iat``/``exp`` against ``at``."""
        message = _sign1(_inflate(_unprefixed(text)))
        if message.phdr.get(Algorithm) is not Es256:
            raise InvalidArgument("the QR must be signed ES256")
        if KID in message.uhdr:
            raise InvalidArgument("the QR's kid must be in the protected header")
        kid = message.phdr.get(KID)
        if not isinstance(kid, bytes) or kid not in self._keys:
            raise InvalidArgument("the QR is signed by a key the issuer does not publish (unknown kid)")
        jws_kid, verifying = self._keys[kid]
        signature = message.signature
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise InvalidArgument("the QR's signature does not verify (an ES256 signature is 64 bytes)")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            verifying.verify(der, message._create_sig_structure(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise InvalidArgument("the QR's signature does not verify (tampered or signed by another key)") from None
        except (CoseException, ValueError, TypeError):
            raise InvalidArgument("the QR's signature does not verify (malformed)") from None
        return _claims(message.payload, at, jws_kid)


def verify_qr(text: str, jwks: dict[str, Any], *, at: datetime) -> VerifiedQr:
    """``QrVerifier(jwks).verify(text, at=at)`` (a verifier checking many QRs builds the ``QrVerifier`` once)."""
    return QrVerifier(jwks).verify(text, at=at)


def qr_version(text: str) -> int:
    """The QR version (1–40) ``render_qr`` uses for ``text``."""
    return int(_symbol(text).version)  # type: ignore[arg-type]


def render_qr(text: str, *, kind: str = "png", scale: int = 4, border: int = 4) -> bytes:
    """The QR code of ``text`` as PNG or SVG bytes (segno; alphanumeric mode, error correction Q or better)."""
    if kind not in ("png", "svg"):
        raise InvalidArgument("a QR renders as png or svg")
    if kind == "png":
        return _png(_symbol(text), scale, border)
    out = io.BytesIO()
    _symbol(text).save(out, kind=kind, scale=scale, border=border)
    return out.getvalue()


PNG_WRITER = "pillow"
"""Who writes the PNG: Pillow (zlib in C) from segno's module matrix, the same pixels as segno's own writer
(1 bit, black on white, ``border`` light modules around, each module ``scale`` pixels), which builds every
scanline in Python — some 4 ms of a certificate's CPU."""
_PIXELS = bytes.maketrans(b"\x00\x01", b"\xff\x00")  # light module → white, dark → black


def _png(symbol: segno.QRCode, scale: int, border: int) -> bytes:
    if not 1 <= scale <= 64 or not 0 <= border <= 64:
        raise InvalidArgument("a QR's scale is 1..64 pixels a module and its border 0..64 modules")
    matrix = symbol.matrix
    size = len(matrix) + 2 * border
    light = b"\xff" * border
    rows = [b"\xff" * size] * border
    rows += [light + bytes(row).translate(_PIXELS) + light for row in matrix]
    rows += [b"\xff" * size] * border
    image = Image.frombytes("L", (size, size), b"".join(rows)).convert("1", dither=Image.Dither.NONE)
    if scale != 1:
        image = image.resize((size * scale, size * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def verifications_per_second(seconds: float = 1.0) -> float:
    """Offline QR verifications a second on this machine, for ``dinhdanh bench issuance`` (not a test)."""
    key = SigningKey.generate()
    fields = QrFields(DOC_CRIMINAL_RECORD_1, "Nguyễn Văn An", "2345", 0, date(2026, 12, 1), "LLTP-2026-000001", 1)
    at = datetime.now(UTC)
    text = encode_qr(key, fields, issuer="https://dinhdanh.example/issuers/lltp", issued_at=at)
    verifier = QrVerifier(key.jwks())
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        verifier.verify(text, at=at)
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _symbol(text: str) -> segno.QRCode:
    if not isinstance(text, str) or not text:
        raise InvalidArgument("a QR holds non-empty text")
    try:
        return segno.make(text, error=ERROR_CORRECTION, micro=False, mask=MASK)
    except (ValueError, segno.DataOverflowError):
        raise InvalidArgument("the text does not fit a QR code") from None


def _unprefixed(text: Any) -> str:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise InvalidArgument(f"a QR payload is text of at most {MAX_TEXT} characters")
    if not text.startswith(PREFIX):
        raise InvalidArgument(f"not a Định danh QR payload (the prefix must be {PREFIX})")
    body = text[len(PREFIX) :]
    if not body:
        raise InvalidArgument("the QR payload is empty after its prefix")
    return body


def _inflate(body: str) -> bytes:
    compressed = base45_decode(body)
    if len(compressed) > MAX_COMPRESSED:
        raise InvalidArgument("the QR payload is too large")
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, MAX_INFLATED)
    except zlib.error:
        raise InvalidArgument("the QR payload is not zlib-compressed") from None
    if inflater.unconsumed_tail:
        raise InvalidArgument("the QR payload inflates too large")
    if not inflater.eof:
        raise InvalidArgument("the QR payload's zlib stream is truncated")
    return data


def _sign1(data: bytes) -> Sign1Message:
    try:
        decoded = cbor2.loads(data)
    except (cbor2.CBORError, ValueError, TypeError, RecursionError):
        raise InvalidArgument("the QR payload is not CBOR") from None
    if not isinstance(decoded, cbor2.CBORTag) or decoded.tag != COSE_SIGN1_TAG:
        raise InvalidArgument("the QR payload is not a tagged COSE_Sign1 (tag 18)")
    parts = decoded.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise InvalidArgument("a COSE_Sign1 is an array of four")
    protected, unprotected, payload, signature = parts
    if not (isinstance(protected, bytes) and isinstance(payload, bytes) and isinstance(signature, bytes)):
        raise InvalidArgument("the COSE_Sign1's headers, payload and signature must be byte strings")
    if not hasattr(unprotected, "items"):
        raise InvalidArgument("the COSE_Sign1's unprotected header must be a map")
    try:
        return Sign1Message.from_cose_obj([protected, dict(unprotected), payload, signature], True)
    except (CoseException, cbor2.CBORError, ValueError, TypeError, KeyError, AttributeError):
        raise InvalidArgument("the COSE_Sign1's headers are malformed") from None


def _claims(payload: bytes, at: datetime, kid: str) -> VerifiedQr:
    try:
        claims = cbor2.loads(payload)
    except (cbor2.CBORError, ValueError, TypeError, RecursionError):
        raise InvalidArgument("the QR's CWT is not CBOR") from None
    if not isinstance(claims, dict):
        raise InvalidArgument("the QR's CWT is not a claims map")
    issuer = claims.get(CWT_ISS)
    if not isinstance(issuer, str) or not issuer:
        raise InvalidArgument("the QR names no issuer (iss)")
    iat = claims.get(CWT_IAT)
    if not _is_int(iat) or iat < 0:
        raise InvalidArgument("the QR's iat is not a NumericDate")
    issued_at = datetime.fromtimestamp(iat, UTC)
    if issued_at > at + CLOCK_SKEW:
        raise InvalidArgument("the QR is issued in the future (iat)")
    expires_at = None
    if CWT_EXP in claims:
        exp = claims[CWT_EXP]
        if not _is_int(exp) or exp < 0:
            raise InvalidArgument("the QR's exp is not a NumericDate")
        expires_at = datetime.fromtimestamp(exp, UTC)
        if at >= expires_at:
            raise InvalidArgument("the QR has expired (exp)")
    return VerifiedQr(QrFields.from_cbor_map(claims.get(CLAIM_CERTIFICATE)), issuer, issued_at, expires_at, kid)


def _text(value: Any, name: str, limit: int, *, ascii_only: bool = False) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= limit or (ascii_only and not value.isascii()):
        raise InvalidArgument(f"{name} is a non-empty{' ASCII' if ascii_only else ''} string of at most {limit}")


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(at: datetime) -> int:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidArgument("instants must be timezone-aware datetimes")
    return int(at.timestamp())
