"""vault.crypto.envelope: master key → citizen KEK → data key; binding, rotation, crypto-shredding, storage form."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from vault.crypto.envelope import (
    Kek,
    KeyShredded,
    KeyUnwrapError,
    MasterKey,
    WrappedDataKey,
    WrappedKek,
    new_data_key,
    new_kek,
    new_master_key,
    open_data_key,
    rewrap_data_key,
    rewrap_kek,
    rotate_kek,
    unwrap_data_key,
    unwrap_kek,
    wrap_data_key,
)
from vault.crypto.streaming import CorruptObject, Decryptor, encrypt_stream

ALICE, BOB = "citizen:079-201-000123", "citizen:001-099-004567"
MASTER = new_master_key(1)


def decrypt(data_key: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    decryptor = Decryptor(data_key, aad)
    return b"".join([*decryptor.update(ciphertext), decryptor.finish()])


def test_wrap_and_unwrap_round_trip() -> None:
    kek, wrapped_kek = new_kek(MASTER, ALICE)
    assert (wrapped_kek.kek_version, wrapped_kek.master_version) == (1, 1)
    assert unwrap_kek(MASTER, ALICE, wrapped_kek) == kek
    data_key = new_data_key()
    wrapped = wrap_data_key(kek, data_key, "doc-1")
    assert wrapped.kek_version == 1
    assert unwrap_data_key(kek, wrapped, "doc-1") == data_key
    assert open_data_key(MASTER, ALICE, wrapped_kek, wrapped, "doc-1") == data_key
    assert wrap_data_key(kek, data_key, "doc-1").nonce != wrapped.nonce  # random nonces


def test_keys_are_bound_to_owner_object_and_version() -> None:
    alice, alice_wrapped = new_kek(MASTER, ALICE)
    bob, bob_wrapped = new_kek(MASTER, BOB)
    wrapped = wrap_data_key(alice, new_data_key(), "doc-1")
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(alice, wrapped, "doc-2")  # moved to another object row
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(bob, wrapped, "doc-1")  # moved to another citizen
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(dataclasses.replace(alice, owner_ref=BOB), wrapped, "doc-1")  # right key, wrong owner
    with pytest.raises(KeyUnwrapError):
        unwrap_kek(MASTER, BOB, alice_wrapped)  # Alice's KEK row swapped onto Bob
    with pytest.raises(KeyUnwrapError):
        open_data_key(MASTER, BOB, bob_wrapped, wrapped, "doc-1")
    with pytest.raises(KeyUnwrapError):
        unwrap_kek(new_master_key(1), ALICE, alice_wrapped)  # another master key with the same version
    with pytest.raises(KeyUnwrapError, match="master version 1"):
        unwrap_kek(new_master_key(2), ALICE, alice_wrapped)


def test_editing_versions_in_the_stored_blob_is_detected() -> None:
    kek, wrapped_kek = new_kek(MASTER, ALICE, version=3)
    wrapped = wrap_data_key(kek, new_data_key(), "doc-1")
    forged_kek = WrappedKek.from_bytes(wrapped_kek.to_bytes()[:2] + struct.pack(">I", 4) + wrapped_kek.to_bytes()[6:])
    assert forged_kek.kek_version == 4
    with pytest.raises(KeyUnwrapError):
        unwrap_kek(MASTER, ALICE, forged_kek)
    relabelled = dataclasses.replace(wrapped, kek_version=4)
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(dataclasses.replace(kek, version=4), relabelled, "doc-1")
    with pytest.raises(KeyUnwrapError, match="KEK version 4"):
        unwrap_data_key(kek, relabelled, "doc-1")
    tampered = dataclasses.replace(wrapped, wrapped=bytes([wrapped.wrapped[0] ^ 1]) + wrapped.wrapped[1:])
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(kek, tampered, "doc-1")


def test_kek_rotation_keeps_objects_readable_without_reencrypting_them() -> None:
    old_kek, old_wrapped_kek = new_kek(MASTER, ALICE)
    objects = {}
    for object_id in ("doc-1", "doc-2", "doc-3"):
        data_key = new_data_key()
        ciphertext = b"".join(encrypt_stream(data_key, [object_id.encode() * 1000], object_id.encode()))
        objects[object_id] = (ciphertext, wrap_data_key(old_kek, data_key, object_id))

    new, new_wrapped_kek = rotate_kek(MASTER, old_kek)
    assert (new.version, new_wrapped_kek.kek_version) == (2, 2)
    assert new.key != old_kek.key
    rewrapped = {oid: rewrap_data_key(old_kek, new, wrapped, oid) for oid, (_, wrapped) in objects.items()}
    del old_kek, old_wrapped_kek  # the old KEK version is destroyed once every data key moved

    for object_id, (ciphertext, old_wrapped) in objects.items():
        data_key = open_data_key(MASTER, ALICE, new_wrapped_kek, rewrapped[object_id], object_id)
        assert decrypt(data_key, ciphertext, object_id.encode()) == object_id.encode() * 1000
        assert len(rewrapped[object_id].to_bytes()) == 66  # only this small blob changed
        with pytest.raises(KeyUnwrapError):
            open_data_key(MASTER, ALICE, new_wrapped_kek, old_wrapped, object_id)
    with pytest.raises(ValueError, match="same owner"):
        rewrap_data_key(new, new_kek(MASTER, BOB)[0], rewrapped["doc-1"], "doc-1")


def test_master_rotation_rewraps_keks_only() -> None:
    kek, wrapped_kek = new_kek(MASTER, ALICE)
    wrapped = wrap_data_key(kek, data_key := new_data_key(), "doc-1")
    master_2 = new_master_key(2)
    moved = rewrap_kek(MASTER, master_2, ALICE, wrapped_kek)
    assert (moved.kek_version, moved.master_version) == (1, 2)
    assert unwrap_kek(master_2, ALICE, moved) == kek  # same KEK: data keys need no change
    assert open_data_key(master_2, ALICE, moved, wrapped, "doc-1") == data_key
    with pytest.raises(KeyUnwrapError):
        unwrap_kek(dataclasses.replace(MASTER, version=2), ALICE, moved)  # old master bytes, new version
    with pytest.raises(KeyUnwrapError):
        unwrap_kek(MASTER, ALICE, moved)


def test_crypto_shredding_makes_objects_unreadable() -> None:
    kek, wrapped_kek = new_kek(MASTER, ALICE)
    data_key = new_data_key()
    ciphertext = b"".join(encrypt_stream(data_key, [b"so ho khau"], b"doc-1"))
    wrapped = wrap_data_key(kek, data_key, "doc-1")
    assert decrypt(open_data_key(MASTER, ALICE, wrapped_kek, wrapped, "doc-1"), ciphertext, b"doc-1")

    del kek, wrapped_kek, data_key  # shredding: the citizen's wrapped KEK row (and its backups) is deleted
    with pytest.raises(KeyShredded):
        open_data_key(MASTER, ALICE, None, wrapped, "doc-1")
    # The KEK is random, not derived from the master key: recreating "the same" KEK yields another key.
    again, again_wrapped = new_kek(MASTER, ALICE, version=1)
    with pytest.raises(KeyUnwrapError):
        open_data_key(MASTER, ALICE, again_wrapped, wrapped, "doc-1")
    with pytest.raises(KeyUnwrapError):
        unwrap_data_key(again, wrapped, "doc-1")
    with pytest.raises(CorruptObject):  # nor does any other key open the object
        decrypt(new_data_key(), ciphertext, b"doc-1")


def test_serialization_round_trip_and_validation() -> None:
    kek, wrapped_kek = new_kek(MASTER, ALICE, version=7)
    wrapped = wrap_data_key(kek, new_data_key(), "doc-1")
    kek_blob, data_key_blob = wrapped_kek.to_bytes(), wrapped.to_bytes()
    assert (len(kek_blob), len(data_key_blob)) == (70, 66)
    assert WrappedKek.from_bytes(kek_blob) == wrapped_kek
    assert WrappedDataKey.from_bytes(data_key_blob) == wrapped
    assert unwrap_data_key(unwrap_kek(MASTER, ALICE, WrappedKek.from_bytes(kek_blob)), wrapped, "doc-1")
    for bad in (data_key_blob, kek_blob[:-1], kek_blob + b"\0", b"\x02" + kek_blob[1:]):
        with pytest.raises(ValueError, match="not a wrapped KEK"):
            WrappedKek.from_bytes(bad)
    with pytest.raises(ValueError, match="not a wrapped data key"):
        WrappedDataKey.from_bytes(kek_blob[:66])


def test_secrets_stay_out_of_reprs_and_inputs_are_checked() -> None:
    kek, _ = new_kek(MASTER, ALICE)
    assert kek.key.hex() not in repr(kek)
    assert MASTER.key.hex() not in repr(MASTER)
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(1, bytes(16))
    with pytest.raises(ValueError, match="32-bit"):
        Kek(ALICE, -1, bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        wrap_data_key(kek, bytes(16), "doc-1")
    with pytest.raises(ValueError, match="UTF-8"):
        wrap_data_key(kek, new_data_key(), "")
