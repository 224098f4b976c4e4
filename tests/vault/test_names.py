"""vault.crypto.names: titles, filenames and issuer names sealed under a key derived from the data key."""

from __future__ import annotations

import pytest

from vault.crypto.envelope import KeyUnwrapError, new_data_key
from vault.crypto.names import Names, open_names, seal_names

NAMES = Names("Giấy khai sinh của Nguyễn Văn An", "khai-sinh.pdf", "UBND phường Ba Đình")


def test_names_open_with_their_data_key_and_place_only() -> None:
    key, other = new_data_key(), new_data_key()
    blob = seal_names(key, NAMES, b"owner-a\0document-1")
    assert open_names(key, blob, b"owner-a\0document-1") == NAMES
    assert NAMES.title.encode() not in blob
    assert seal_names(key, NAMES, b"owner-a\0document-1") != blob, "a fresh nonce each time"
    for wrong_key, place in ((other, b"owner-a\0document-1"), (key, b"owner-b\0document-1"),
                             (key, b"owner-a\0document-2")):  # fmt: skip
        with pytest.raises(KeyUnwrapError):
            open_names(wrong_key, blob, place)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(KeyUnwrapError):
        open_names(key, tampered, b"owner-a\0document-1")
    with pytest.raises(KeyUnwrapError):
        open_names(key, b"\x02" + blob[1:], b"owner-a\0document-1")
