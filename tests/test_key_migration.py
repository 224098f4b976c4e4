"""The one-time split of an existing stack's ``identity.key`` into per-purpose keys (issue 9, item 5).

The old code derived every key from that one file with HKDF-SHA-256 (info ``dinhdanh/<purpose>``); the
derivation is written out again here, independently of the code under test, so data sealed by the old
code (TOTP secrets, vault KEKs, ``sub`` values, sealed signing keys) stays readable after the split."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.keys import purposes as p
from core.keys.files import FileKeyProvider
from core.keys.provider import KeyUnavailable
from core.keys.sealing import Sealer
from stack.secrets import PROCESS_KEYS, SecretStore


def old_derive(master: bytes, info: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=f"dinhdanh/{info}".encode()).derive(master)


OLD = {  # purpose → how the code before the split derived it from identity.key
    p.TOTP_SECRET: lambda m: old_derive(m, "totp-secret"),
    p.LOGIN_TICKET: lambda m: old_derive(m, "login-ticket"),
    p.AUDIT_PSEUDONYM: lambda m: old_derive(m, "audit-pseudonym"),
    p.OIDC_SIGNING_KEY: lambda m: old_derive(m, "oidc-signing-key"),
    p.SSO_SESSION: lambda m: old_derive(m, "oidc/sso-session"),
    p.LOGIN_FLOW: lambda m: old_derive(m, "oidc/login-flow"),
    p.AUTHORIZATION_CODE: lambda m: old_derive(m, "oidc/authorization-code"),
    p.OIDC_SUBJECT: lambda m: old_derive(m, "oidc-subject") + old_derive(m, "oidc-subject-mac"),
    p.VAULT_OWNER: lambda m: old_derive(m, "vault-owner"),
    p.VAULT_MASTER: lambda m: old_derive(m, "vault-master"),
}


NEW = {
    p.DEVICE_ID,
    p.CONSENT_SIGNING,
    p.LOG_SIGNING,
    p.ISSUANCE_SIGNING,
    p.ISSUANCE_DOCUMENT,
    p.HEALTH_SIGNING,
    p.HOLDER_KEY,
}  # purposes the old release did not have: random keys


def test_every_purpose_of_the_old_release_keeps_its_key() -> None:
    assert set(OLD) == set(p.SIZES) - NEW


def test_an_existing_master_key_is_split_once_and_then_withdrawn(tmp_path: Path) -> None:
    master = os.urandom(32)
    store = SecretStore(tmp_path / "secrets")
    (tmp_path / "secrets").mkdir()
    store.path("identity.key").write_bytes(master)
    nonce = os.urandom(12)
    old_totp = nonce + AESGCM(OLD[p.TOTP_SECRET](master)).encrypt(nonce, b"JBSWY3DPEHPK3PXP", b"acct")

    assert store.ensure_keys() is True  # migrated
    assert not store.path("identity.key").exists(), "the old master key stays behind"
    for process, held in PROCESS_KEYS.items():
        keys = FileKeyProvider.in_folder(store.keys_dir(process))
        assert keys.purposes == set(held)
        for purpose in set(held) - NEW:
            assert keys.key(purpose) == OLD[purpose](master), f"{process}/{purpose} differs from the old key"
    identity = FileKeyProvider.in_folder(store.keys_dir("identity"))
    assert Sealer(identity.key(p.TOTP_SECRET)).open(old_totp, b"acct") == b"JBSWY3DPEHPK3PXP"

    assert store.ensure_keys() is False  # nothing to migrate the second time; the same keys
    again = FileKeyProvider.in_folder(store.keys_dir("identity"))
    assert again.key(p.TOTP_SECRET) == OLD[p.TOTP_SECRET](master)


def test_a_new_stack_gets_random_independent_keys(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    assert store.ensure_keys() is False
    every = FileKeyProvider.in_folder(store.keys_dir("vault"))
    keys = [every.key(purpose) for purpose in sorted(every.purposes)]
    assert len(set(keys)) == len(keys)
    assert all(len(every.key(purpose)) == p.SIZES[purpose] for purpose in every.purposes)
    for path in store.keys_dir("vault").iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def test_a_purpose_not_given_is_a_clear_error(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    store.ensure_keys()
    edge = FileKeyProvider.in_folder(store.keys_dir("edge"))
    with pytest.raises(KeyUnavailable, match="totp-secret") as caught:
        edge.key(p.TOTP_SECRET)
    assert str(store.keys_dir("edge")) in str(caught.value)


def test_a_key_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / p.OIDC_SUBJECT).write_bytes(os.urandom(32))  # AES-SIV needs 64 bytes
    with pytest.raises(ValueError, match="64 bytes"):
        FileKeyProvider.in_folder(folder)
