"""What signs through the token verifies as before: the log's checkpoints (C2SP signed-note, Ed25519), the issuer's
SD-JWT VCs, status lists and QR payloads (ES256) — and the file-backed keys are exactly the seeds' keys."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

from audit import checkpoint as notes
from audit.sequencer import Signer as LogSigner
from core.keys import purposes
from core.keys.memory import KeyMap
from core.keys.pkcs11 import Token
from issuance.credentials import VCT_CRIMINAL_RECORD, issue_credential, verify_credential
from issuance.issuer_keys import SigningKey
from issuance.qr import DOC_CRIMINAL_RECORD_1, QrFields, encode_qr, id_last_digits, verify_qr
from issuance.status_list import Status, StatusList, StatusReference, sign_status_list, verify_status_list

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ISSUER = "https://dinhdanh.example/issuers/lltp"
URI = "https://dinhdanh.example/statuslists/1"
ORIGIN = "dinhdanh.example/log"


def test_a_checkpoint_signed_in_the_token_verifies_with_the_published_key(token: Token) -> None:
    log = LogSigner.from_signer(ORIGIN, token.signer("log-checkpoint", "EdDSA"))
    note = log.sign(7, b"\x11" * 32)
    name, public = notes.parse_vkey(log.vkey)  # what the log publishes (/log/key, the bucket's key file)
    checkpoint = notes.verify(note, name, public, expected_origin=ORIGIN)
    assert (checkpoint.size, checkpoint.root_hash) == (7, b"\x11" * 32)
    other = LogSigner.from_seed(ORIGIN, os.urandom(32))
    assert other.vkey != log.vkey
    _, other_public = notes.parse_vkey(other.vkey)
    try:
        notes.verify(note, name, other_public)
    except notes.SignatureError:
        pass
    else:
        raise AssertionError("a checkpoint verified under another key")


def test_issuer_signatures_made_in_the_token_verify(token: Token) -> None:
    key = SigningKey.from_signer(token.signer("issuer-credential", "ES256"))
    jwks = key.jwks()
    assert jwks["keys"][0]["kid"] == key.kid
    assert "d" not in jwks["keys"][0]
    credential = issue_credential(
        key, issuer=ISSUER, vct=VCT_CRIMINAL_RECORD, claims={"full_name": "Nguyễn Thị Minh Khai"},
        holder_jwk=SigningKey.generate().public_jwk, status=StatusReference(42, URI), issued_at=AT,
        expires_at=AT + timedelta(days=365),
    )  # fmt: skip
    assert verify_credential(credential, jwks, at=AT + timedelta(days=1), issuer=ISSUER).claims["full_name"]
    statuses = StatusList.new(64, 2)
    statuses.set(42, Status.INVALID)
    listed = sign_status_list(key, statuses, uri=URI, at=AT, lifetime=timedelta(days=1))
    assert verify_status_list(listed, jwks, uri=URI, at=AT + timedelta(minutes=5)).status_list.get(42) == 1
    fields = QrFields(document_type=DOC_CRIMINAL_RECORD_1, holder_name="Nguyễn Thị Minh Khai",
                      id_last_digits=id_last_digits("001190012345"), convictions=0, issued_on=date(2026, 12, 1),
                      certificate_id="LLTP-2026-000042", status_index=42)  # fmt: skip
    qr = encode_qr(key, fields, issuer=ISSUER, issued_at=AT, expires_at=AT + timedelta(days=180))
    assert verify_qr(qr, jwks, at=AT + timedelta(days=1)).kid == key.kid


def test_file_backed_signers_are_the_seeds_keys() -> None:
    seeds = {purposes.LOG_SIGNING: os.urandom(32), purposes.ISSUANCE_SIGNING: os.urandom(32)}
    keys = KeyMap(seeds)
    log = LogSigner.from_signer(ORIGIN, keys.signer(purposes.LOG_SIGNING))
    assert log.vkey == LogSigner.from_seed(ORIGIN, seeds[purposes.LOG_SIGNING]).vkey
    issuer = SigningKey.from_signer(keys.signer(purposes.ISSUANCE_SIGNING))
    assert issuer.public_jwk == SigningKey.from_seed(seeds[purposes.ISSUANCE_SIGNING]).public_jwk
