"""Operator actions on one citizen's vault keys (``dinhdanh vault shred`` / ``rotate-kek``).

- Shredding destroys the citizen's wrapped KEK (its row stays, emptied, with its version: the next KEK takes the
  next one) and marks their documents shredded: every data key, and so every object and every sealed title and
  filename, is unrecoverable even with the master key (backups holding the old KEK row must expire too). The
  upkeep purges rows and objects after the retention period; downloads are FAILED_PRECONDITION meanwhile.
- KEK rotation creates the next KEK version and rewraps every data key of the citizen under it, in one
  transaction with the KEK row locked (an upload racing it is refused with ABORTED); objects are untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from vault.crypto.envelope import WrappedDataKey, WrappedKek, rewrap_data_key, rotate_kek, unwrap_kek
from vault.documents import check_id_number
from vault.keyring import Keyring
from vault.store import VaultStore


@dataclass(frozen=True, slots=True)
class Shredded:
    kek_rows: int
    documents: int


@dataclass(frozen=True, slots=True)
class Rotated:
    kek_version: int
    data_keys: int


async def shred(keyring: Keyring, store: VaultStore, id_number: str) -> Shredded:
    kek_rows, documents = await store.shred(keyring.owner_ref(check_id_number(id_number)))
    return Shredded(kek_rows, documents)


async def rotate(keyring: Keyring, store: VaultStore, id_number: str) -> Rotated | None:
    """None when the citizen has no KEK (no document yet, or shredded)."""
    owner = keyring.owner_ref(check_id_number(id_number))

    def rotation(old_wrapped: WrappedKek) -> tuple[WrappedKek, Callable[[uuid.UUID, WrappedDataKey], WrappedDataKey]]:
        old = unwrap_kek(keyring.master, owner, old_wrapped)
        new, new_wrapped = rotate_kek(keyring.master, old)

        def rewrap(row_id: uuid.UUID, wrapped: WrappedDataKey) -> WrappedDataKey:
            return rewrap_data_key(old, new, wrapped, str(row_id))

        return new_wrapped, rewrap

    done = await store.rotate(owner, rotation)
    return None if done is None else Rotated(done[0].kek_version, done[1])
