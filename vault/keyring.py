"""Keys of the vault: pseudonymous owner references, the master key, and each citizen's KEK.

- ``owner_ref`` = base64url(HMAC-SHA256(k_owner, ID number)), ``k_owner`` derived from the identity master
  key (HKDF purpose ``vault-owner``): PostgreSQL and S3 never see the ID number, and the reference cannot
  be recomputed without the key.
- The vault master key is HKDF(identity master key, ``vault-master``), version 1. In production it belongs in
  a KMS/HSM; ``vault.crypto.envelope.rewrap_kek`` rotates it without touching any object.
- A citizen's KEK is random, created on their first upload and stored only wrapped (``vault.citizen_keys``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from identity.sealing import Sealer, b64
from vault.crypto.envelope import Kek, MasterKey, WrappedKek, new_kek, unwrap_kek

MASTER_VERSION = 1


class KekStore(Protocol):
    async def wrapped_kek(self, owner_ref: str) -> WrappedKek | None: ...

    async def add_kek(self, owner_ref: str, wrapped: WrappedKek) -> WrappedKek:
        """Store ``wrapped`` unless the owner has a KEK already; return the one stored."""
        ...


class Keyring:
    def __init__(self, identity_master: bytes, store: KekStore) -> None:
        self._owner_key = Sealer.derive(identity_master, "vault-owner")
        self.master = MasterKey(MASTER_VERSION, Sealer.derive(identity_master, "vault-master"))
        self._store = store

    def owner_ref(self, id_number: str) -> str:
        return b64(hmac.new(self._owner_key, id_number.encode(), hashlib.sha256).digest())

    async def kek(self, owner_ref: str, create: bool) -> Kek | None:
        """The owner's KEK; created on first use when ``create`` (two racing uploads agree on one)."""
        wrapped = await self._store.wrapped_kek(owner_ref)
        if wrapped is None:
            if not create:
                return None
            _, fresh = new_kek(self.master, owner_ref)
            wrapped = await self._store.add_kek(owner_ref, fresh)
        return unwrap_kek(self.master, owner_ref, wrapped)
