"""Keys of the vault: pseudonymous owner references, the master key, and each citizen's KEK.

- ``owner_ref`` = base64url(HMAC-SHA256(k_owner, ID number)), ``k_owner`` the vault's ``vault-owner`` key
  (core.keys.purposes): PostgreSQL and S3 never see the ID number, and the reference cannot be recomputed
  without the key.
- The vault master key is the vault's ``vault-master`` key, version 1; no other process holds it. In
  production it belongs in a KMS/HSM; ``vault.crypto.envelope.rewrap_kek`` rotates it without touching any object.
- A citizen's KEK is random, created on their first upload and stored only wrapped (``vault.citizen_keys``).
  After a shred, the next KEK takes the next version (the shredded one's row keeps its version), so a data key
  wrapped under a shredded KEK can never be taken for one of the new KEK.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from core.keys import purposes
from core.keys.provider import KeyProvider
from core.keys.sealing import b64
from vault.crypto.envelope import Kek, MasterKey, WrappedKek, new_kek, unwrap_kek

MASTER_VERSION = 1


class KekStore(Protocol):
    async def wrapped_kek(self, owner_ref: str) -> WrappedKek | None: ...

    async def last_kek_version(self, owner_ref: str) -> int:
        """The version of the owner's KEK, live or shredded; 0 if they never had one."""
        ...

    async def add_kek(self, owner_ref: str, wrapped: WrappedKek) -> WrappedKek:
        """Store ``wrapped`` unless the owner has a live KEK already; return the one stored."""
        ...


class Keyring:
    def __init__(self, keys: KeyProvider, store: KekStore) -> None:
        self._owner_key = keys.key(purposes.VAULT_OWNER)
        self.master = MasterKey(MASTER_VERSION, keys.key(purposes.VAULT_MASTER))
        self._store = store

    def owner_ref(self, id_number: str) -> str:
        return b64(hmac.new(self._owner_key, id_number.encode(), hashlib.sha256).digest())

    async def kek(self, owner_ref: str, create: bool) -> Kek | None:
        """The owner's KEK; created on first use when ``create`` (two racing uploads agree on one)."""
        wrapped = await self._store.wrapped_kek(owner_ref)
        if wrapped is None:
            if not create:
                return None
            _, fresh = new_kek(self.master, owner_ref, await self._store.last_kek_version(owner_ref) + 1)
            wrapped = await self._store.add_kek(owner_ref, fresh)
        return unwrap_kek(self.master, owner_ref, wrapped)
