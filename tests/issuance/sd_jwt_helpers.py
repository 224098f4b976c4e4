"""Shared fixtures of the SD-JWT VC tests: keys, a criminal-record certificate's claims, part decoding."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from issuance.credentials import VCT_CRIMINAL_RECORD, issue_credential
from issuance.issuer_keys import SigningKey
from issuance.status_list import StatusReference

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ISSUER = "https://dinhdanh.example/issuers/lltp"
ISSUER_KEY = SigningKey.from_seed(b"\x01" * 32)
HOLDER_KEY = SigningKey.from_seed(b"\x02" * 32)
STATUS = StatusReference(idx=42, uri="https://dinhdanh.example/statuslists/1")

CLAIMS: dict[str, Any] = {
    "full_name": "Nguyễn Thị Minh Khai",
    "birthdate": "1990-05-17",
    "place_of_birth": "Xã Hưng Nguyên, tỉnh Nghệ An",
    "father_name": "Nguyễn Văn Phúc",
    "mother_name": "Trần Thị Lụa",
    "criminal_record": "Không có án tích",
    "convictions": [],
    "certificate_number": "LLTP-2026-000042",
    "form": 1,
}


def issued(**overrides: Any) -> str:
    """A criminal-record certificate issued at ``AT`` for a year, bound to ``HOLDER_KEY``."""
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "vct": VCT_CRIMINAL_RECORD,
        "claims": CLAIMS,
        "holder_jwk": HOLDER_KEY.public_jwk,
        "status": STATUS,
        "issued_at": AT,
        "expires_at": AT + timedelta(days=365),
    }
    arguments.update(overrides)
    key = arguments.pop("key", ISSUER_KEY)
    return issue_credential(key, **arguments)


def b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decoded_text(serialized: str) -> str:
    """Every part of an SD-JWT (JWT segments, disclosures, KB-JWT) decoded, as one Unicode text."""
    texts = []
    for part in serialized.split("~"):
        for segment in part.split("."):
            if not segment:
                continue
            try:
                texts.append(json.dumps(b64json(segment), ensure_ascii=False))
            except ValueError:
                texts.append(segment)  # a signature
    return "\n".join(texts)


def sign_jws(header: dict[str, Any], payload: dict[str, Any], key: SigningKey = ISSUER_KEY) -> str:
    """A compact JWS of exactly ``header`` and ``payload`` (to build malformed or foreign tokens)."""
    from joserfc import jws

    return jws.serialize_compact(header, json.dumps(payload).encode(), key.private, algorithms=[header["alg"]])
