"""Revocation and suspension as an IETF Token Status List (draft-ietf-oauth-status-list, JWT form).

A Status List (§4) is a byte array of N entries of ``bits`` ∈ {1, 2, 4, 8} bits each; entry ``i`` sits in byte
``i·bits // 8`` at bit offset ``(i·bits) mod 8``, least significant bit first (§4.1). The array is compressed
with DEFLATE (RFC 1951) in the ZLIB format (RFC 1950) — at the highest level, which reproduces the draft's
example encodings byte for byte — and base64url-encoded without padding as ``lst`` (§4.2). Status values
(§7.1): 0x00 VALID, 0x01 INVALID (revoked for good), 0x02 SUSPENDED; 0x03 is application-specific and not used
here (a 1-bit list can say VALID or INVALID only).

The Status List Token (§5.1) is a JWT with header ``typ: statuslist+jwt`` signed ES256 by the issuer's key, and
claims ``sub`` (the list's URI, which the Referenced Token's ``status.status_list.uri`` names), ``iat``, ``exp``
(optional), ``ttl`` (optional: seconds a verifier may cache it) and ``status_list: {bits, lst}``; ``iss`` when
given. A Referenced Token (a credential) carries ``status: {status_list: {idx, uri}}`` (§6.1). A verifier
(§8.3) checks the token's ``typ`` and signature, that ``sub`` equals the URI it fetched, that it has not
expired, then reads entry ``idx``.
"""

from __future__ import annotations

import enum
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from core.errors import InvalidArgument
from issuance.issuer_keys import ALGORITHM, SigningKey, b64url, b64url_decode, find_key

TYPE = "statuslist+jwt"
BITS = (1, 2, 4, 8)
MAX_ENTRIES = 1 << 24  # 16,777,216 credentials per list: 4 MiB uncompressed at 2 bits
MAX_BYTES = MAX_ENTRIES  # the most a decoded list may inflate to (8 bits × MAX_ENTRIES)
MAX_URI = 2048
CLOCK_SKEW = timedelta(minutes=5)


class Status(enum.IntEnum):
    """The status of a Referenced Token (§7.1)."""

    VALID = 0
    INVALID = 1
    SUSPENDED = 2


def _value(value: int | Status) -> int:
    """A status value: one of ``Status`` or an application-specific value (0x03 and up, §7.1) that the list's
    bit width holds (the draft's examples use 0x03)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise InvalidArgument("a status is VALID (0), INVALID (1), SUSPENDED (2) or an application value < 256")
    return int(value)


class StatusList:
    """N entries of ``bits`` bits each (§4.1); mutable, as the issuer sets entries before signing a new token."""

    __slots__ = ("_bits", "_data", "_size")

    def __init__(self, bits: int, data: bytes, size: int) -> None:
        if isinstance(bits, bool) or bits not in BITS:
            raise InvalidArgument(f"a status list has bits 1, 2, 4 or 8, not {bits!r}")
        if not 0 < size <= MAX_ENTRIES or len(data) * 8 < size * bits:
            raise InvalidArgument(f"a status list has 1..{MAX_ENTRIES} entries")
        self._bits = bits
        self._data = bytearray(data)
        self._size = size

    @classmethod
    def new(cls, size: int, bits: int) -> StatusList:
        """A list of ``size`` entries, all VALID."""
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_ENTRIES:
            raise InvalidArgument(f"a status list has 1..{MAX_ENTRIES} entries")
        if isinstance(bits, bool) or bits not in BITS:
            raise InvalidArgument(f"a status list has bits 1, 2, 4 or 8, not {bits!r}")
        return cls(bits, bytes((size * bits + 7) // 8), size)

    @classmethod
    def decode(cls, claim: Any) -> StatusList:
        """The list a ``status_list`` claim ``{bits, lst}`` encodes (§4.2); its size is every entry the bytes
        hold (the draft carries no count)."""
        if not isinstance(claim, dict):
            raise InvalidArgument("status_list must be an object {bits, lst}")
        bits, lst = claim.get("bits"), claim.get("lst")
        if isinstance(bits, bool) or bits not in BITS:
            raise InvalidArgument("status_list.bits must be 1, 2, 4 or 8")
        if not isinstance(lst, str) or not lst:
            raise InvalidArgument("status_list.lst must be a base64url string")
        try:
            compressed = b64url_decode(lst)
        except InvalidArgument:
            raise InvalidArgument("status_list.lst is not base64url") from None
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(compressed, MAX_BYTES)
        except zlib.error:
            raise InvalidArgument("status_list.lst is not ZLIB-compressed") from None
        if inflater.unconsumed_tail:
            raise InvalidArgument(f"status_list.lst inflates beyond {MAX_BYTES} bytes")
        if not inflater.eof:
            raise InvalidArgument("status_list.lst is truncated")
        if not data:
            raise InvalidArgument("status_list.lst is empty")
        return cls(bits, data, len(data) * 8 // bits)

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def size(self) -> int:
        return self._size

    def _position(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self._size:
            raise InvalidArgument(f"the status index must be 0..{self._size - 1}")
        offset = index * self._bits
        return offset // 8, offset % 8

    def get(self, index: int) -> int:
        """The raw value of entry ``index``."""
        byte, shift = self._position(index)
        return (self._data[byte] >> shift) & ((1 << self._bits) - 1)

    def status(self, index: int) -> Status:
        """Entry ``index`` as a ``Status``; ``InvalidArgument`` for a value this platform does not define."""
        value = self.get(index)
        try:
            return Status(value)
        except ValueError:
            raise InvalidArgument(f"status value {value:#04x} is not one this platform defines") from None

    def set(self, index: int, status: int | Status) -> None:
        value = _value(status)
        if value >= 1 << self._bits:
            name = Status(value).name if value in iter(Status) else f"{value:#04x}"
            raise InvalidArgument(f"a list of {self._bits} bit per entry cannot hold {name}")
        byte, shift = self._position(index)
        mask = ((1 << self._bits) - 1) << shift
        self._data[byte] = (self._data[byte] & ~mask) | (value << shift)

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def encoded(self) -> dict[str, Any]:
        """The ``status_list`` claim: ``{bits, lst}`` (§4.2)."""
        return {"bits": self._bits, "lst": b64url(zlib.compress(bytes(self._data), 9))}


@dataclass(frozen=True, slots=True)
class StatusReference:
    """A credential's ``status.status_list`` (§6.1): the entry ``idx`` of the list at ``uri``."""

    idx: int
    uri: str

    def __post_init__(self) -> None:
        if isinstance(self.idx, bool) or not isinstance(self.idx, int) or not 0 <= self.idx < MAX_ENTRIES:
            raise InvalidArgument(f"status.status_list.idx must be an integer 0..{MAX_ENTRIES - 1}")
        if not isinstance(self.uri, str) or not 0 < len(self.uri) <= MAX_URI or not self.uri.isascii():
            raise InvalidArgument("status.status_list.uri must be a URI")

    @classmethod
    def from_claim(cls, claim: Any) -> StatusReference:
        """The reference a ``status`` claim holds."""
        inner = claim.get("status_list") if isinstance(claim, dict) else None
        if not isinstance(inner, dict):
            raise InvalidArgument("the status claim must be {status_list: {idx, uri}}")
        return cls(idx=inner.get("idx"), uri=inner.get("uri"))  # type: ignore[arg-type]

    def claim(self) -> dict[str, Any]:
        return {"status_list": {"idx": self.idx, "uri": self.uri}}


@dataclass(frozen=True, slots=True)
class StatusListToken:
    """A verified Status List Token."""

    uri: str
    issued_at: datetime
    expires_at: datetime | None
    ttl: int | None
    status_list: StatusList
    issuer: str | None = None


def sign_status_list(
    key: SigningKey,
    status_list: StatusList,
    *,
    uri: str,
    at: datetime,
    lifetime: timedelta | None = None,
    ttl: timedelta | None = None,
    issuer: str | None = None,
) -> str:
    """The Status List Token (§5.1): ``sub`` = ``uri``, ``iat`` = ``at``, ``exp`` = ``at + lifetime``."""
    StatusReference(0, uri)  # the same URI checks
    claims: dict[str, Any] = {"sub": uri, "iat": _seconds(at), "status_list": status_list.encoded()}
    if lifetime is not None:
        if lifetime <= timedelta(0):
            raise InvalidArgument("a status list's lifetime must be positive")
        claims["exp"] = _seconds(at + lifetime)
    if ttl is not None:
        if ttl <= timedelta(0):
            raise InvalidArgument("a status list's ttl must be positive")
        claims["ttl"] = int(ttl.total_seconds())
    if issuer is not None:
        claims["iss"] = issuer
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": TYPE}
    return jwt.encode(header, claims, key.private, algorithms=[ALGORITHM])


def verify_status_list(token: str, jwks: dict[str, Any], *, uri: str, at: datetime) -> StatusListToken:
    """The list a Status List Token carries, after §8.3's checks (``typ``, signature, ``sub``, expiry)."""
    header = _header(token)
    if header.get("typ") != TYPE:
        raise InvalidArgument(f"not a Token Status List: typ must be {TYPE}")
    if header.get("alg") != ALGORITHM:
        raise InvalidArgument(f"a status list is signed {ALGORITHM}")
    key = find_key(jwks, str(header.get("kid", "")))
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidArgument(f"the status list signature does not verify ({type(error).__name__})") from None
    claims = dict(decoded.claims)
    if claims.get("sub") != uri:
        raise InvalidArgument("the status list's sub is not the URI it was fetched from")
    issued_at = _instant(claims.get("iat"), "iat")
    if issued_at > at + CLOCK_SKEW:
        raise InvalidArgument("the status list is issued in the future (iat)")
    expires_at = _instant(claims["exp"], "exp") if "exp" in claims else None
    if expires_at is not None and at >= expires_at:
        raise InvalidArgument("the status list has expired (exp)")
    ttl = claims.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise InvalidArgument("the status list's ttl must be a positive integer")
    issuer = claims.get("iss")
    return StatusListToken(
        uri=uri,
        issued_at=issued_at,
        expires_at=expires_at,
        ttl=ttl,
        status_list=StatusList.decode(claims.get("status_list")),
        issuer=issuer if isinstance(issuer, str) else None,
    )


def credential_status(reference: StatusReference, token: StatusListToken) -> Status:
    """The status of the credential ``reference`` names, read from a verified list."""
    if reference.uri != token.uri:
        raise InvalidArgument("the credential's status is kept in another status list")
    return token.status_list.status(reference.idx)


def _header(token: Any) -> dict[str, Any]:
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidArgument("a status list token is a compact JWS")
    try:
        header = json.loads(b64url_decode(token.split(".", 1)[0]))
    except (InvalidArgument, ValueError, UnicodeDecodeError):
        raise InvalidArgument("the status list token's header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise InvalidArgument("the status list token's header is not a JSON object")
    return header


def _seconds(at: datetime) -> int:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidArgument("instants must be timezone-aware datetimes")
    return int(at.timestamp())


def _instant(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"the status list's {name} must be a NumericDate")
    return datetime.fromtimestamp(value, UTC)
