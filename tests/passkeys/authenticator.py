"""A software WebAuthn authenticator for the tests: attestations (``fmt: none``) and assertions made with
``cryptography`` (P-256, ES256), in the JSON a browser's ``PublicKeyCredential.toJSON()`` gives (WebAuthn L3
§5.1: RegistrationResponseJSON, AuthenticationResponseJSON). py_webauthn only verifies; this signs.

Authenticator data (§6.1): rpIdHash ‖ flags ‖ signCount (big-endian u32) ‖ attested credential data (§6.5.1:
AAGUID ‖ credentialIdLength ‖ credentialId ‖ COSE_Key) on registration. Flags: UP 0x01, UV 0x04, BE 0x08,
BS 0x10, AT 0x40.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from core.keys.sealing import b64, unb64

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


@dataclass
class SoftAuthenticator:
    """One credential per instance. ``backup_eligible``/``backed_up`` set BE/BS; ``counter`` is the signature
    counter (None: the authenticator keeps none, always 0, as synced passkeys do)."""

    origin: str
    rp_id: str = "localhost"
    backup_eligible: bool = False
    backed_up: bool = False
    user_verifying: bool = True
    counter: int | None = 0
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    user_handle: bytes = b""

    def _flags(self, extra: int = 0) -> int:
        flags = UP | extra
        if self.user_verifying:
            flags |= UV
        if self.backup_eligible:
            flags |= BE
        if self.backed_up:
            flags |= BS
        return flags

    def _count(self) -> int:
        if self.counter is None:
            return 0
        self.counter += 1
        return self.counter

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin, "crossOrigin": False}
        return json.dumps(data, separators=(",", ":")).encode()

    def create(self, options_json: str, origin: str | None = None, rp_id: str | None = None) -> str:
        """navigator.credentials.create() for the creation options ``options_json``; the response's JSON."""
        options = json.loads(options_json)
        self.user_handle = unb64(options["user"]["id"]) or b""
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        count = self._count()
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key()
        auth_data = rp_hash + bytes([self._flags(AT)]) + struct.pack(">I", count) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return json.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64(client_data), "attestationObject": b64(attestation),
                         "transports": ["internal", "hybrid"]},
        })  # fmt: skip

    def get(self, options_json: str, origin: str | None = None, rp_id: str | None = None,
                counter: int | None = None) -> str:  # fmt: skip
        """navigator.credentials.get() for the request options; ``counter`` overrides the counter sent."""
        options = json.loads(options_json)
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        count = self._count() if counter is None else counter
        auth_data = rp_hash + bytes([self._flags()]) + struct.pack(">I", count)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        response: dict[str, Any] = {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                                    "signature": b64(signature), "userHandle": b64(self.user_handle)}  # fmt: skip
        return json.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {}, "response": response,
        })  # fmt: skip
