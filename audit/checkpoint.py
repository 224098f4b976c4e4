"""Signed tree heads: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes with Ed25519 signatures.

Pure text and cryptography, no I/O. A checkpoint body (c2sp.org/tlog-checkpoint) is::

    <origin>
    <tree size, ASCII decimal>
    <root hash, standard base64>
    [<extension line>...]

and the signed note (c2sp.org/signed-note) is that text, an empty line, and one line per signature,
``— <key name> <base64(key ID || signature)>`` (U+2014, then a space). The Ed25519 key ID is the first four
bytes of ``SHA-256(key name || 0x0A || 0x01 || public key)``; the key is published as the verifier key
``<name>+<hex key ID>+<base64(0x01 || public key)>``.

Every refusal is a ``NoteError`` (a ``ValueError``): ``MalformedNoteError`` for text that is not a signed note
or a key string that is not a verifier key, ``CheckpointFormatError`` for a body that is not a checkpoint,
and ``SignatureError`` when no valid signature by the expected key is found.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ROOT_HASH_SIZE = 32
MAX_SIGNATURES = 100  # signed-note: verifiers may refuse notes with more; golang.org/x/mod/sumdb/note does so
_ED25519 = 0x01  # signed-note signature type of Ed25519
_SIG_PREFIX = "— "  # U+2014 EM DASH, U+0020 SPACE
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)\Z")


class NoteError(ValueError):
    """A signed note, checkpoint or verifier key that is refused."""


class MalformedNoteError(NoteError):
    """Text that is not a well-formed signed note (or key name, or verifier key) of c2sp.org/signed-note."""


class CheckpointFormatError(NoteError):
    """A note text that is not a checkpoint body of c2sp.org/tlog-checkpoint."""


class SignatureError(NoteError):
    """No valid signature by the expected key, or a signature by that key that does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """c2sp.org/tlog-checkpoint: the origin of the log, its tree size and root hash, and extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def _check_name(name: str) -> None:
    """signed-note "Signatures": a key name is non-empty and holds no ``+`` and no Unicode space."""
    if not name or "+" in name or any(c.isspace() for c in name) or not _valid_text(name):
        raise MalformedNoteError(f"invalid key name {name!r}")


def _valid_text(text: str) -> bool:
    """signed-note "Note text": no control characters but newline (U+0000-U+001F, as the Go package)."""
    return all(c == "\n" or ord(c) >= 0x20 for c in text)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """signed-note "Signatures": the 4-byte key ID, ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    _check_name(name)
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + _raw(public_key)).digest()[:4]


def vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """signed-note "Verifier keys": ``<name>+<hex key ID>+<base64(0x01 || public key)>``, to publish the key."""
    encoded = base64.b64encode(bytes([_ED25519]) + _raw(public_key)).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_vkey(text: str) -> tuple[str, Ed25519PublicKey]:
    """Read a verifier key string back into its name and Ed25519 key, checking its key ID."""
    parts = text.split("+", 2)  # the base64 key may itself hold "+"; the name and key ID cannot
    if len(parts) != 3:
        raise MalformedNoteError("a verifier key is <name>+<hex key ID>+<base64 key>")
    name, hex_id, encoded = parts
    _check_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise MalformedNoteError("the key ID of a verifier key is 8 lowercase hex digits")
    raw = _b64decode(encoded, MalformedNoteError, "verifier key")
    if len(raw) != 33 or raw[0] != _ED25519:
        raise MalformedNoteError("the verifier key is not an Ed25519 key (type 0x01 and 32 bytes)")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, public_key).hex() != hex_id:
        raise MalformedNoteError("the key ID of the verifier key does not match its name and key")
    return name, public_key


def _b64decode(text: str, error: type[NoteError], what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4), refusing non-canonical encodings."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"the {what} is not standard base64") from None
    if base64.b64encode(raw).decode() != text:
        raise error(f"the {what} is not canonical base64")
    return raw


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """tlog-checkpoint "Note text": origin, decimal size and base64 root hash lines, then extension lines."""
    lines = [checkpoint.origin, str(checkpoint.size), base64.b64encode(checkpoint.root_hash).decode()]
    lines += checkpoint.extensions
    if checkpoint.size < 0 or checkpoint.size >= 1 << 64:
        raise CheckpointFormatError(f"tree size {checkpoint.size} is not an unsigned 64-bit integer")
    if len(checkpoint.root_hash) != ROOT_HASH_SIZE:
        raise CheckpointFormatError(f"the root hash is {len(checkpoint.root_hash)} bytes, not {ROOT_HASH_SIZE}")
    if any(not line or "\n" in line or not _valid_text(line) for line in [checkpoint.origin, *checkpoint.extensions]):
        raise CheckpointFormatError("origin and extension lines are non-empty single lines without control characters")
    return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """tlog-checkpoint "Note text": read a checkpoint body, refusing anything but the exact format."""
    if not text.endswith("\n"):
        raise CheckpointFormatError("a checkpoint body ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointFormatError("a checkpoint body has an origin, a tree size and a root hash line")
    origin, size_line, root_line, *extensions = lines
    if not origin or any(not line for line in extensions) or not _valid_text(text):
        raise CheckpointFormatError("a checkpoint body has no empty lines and no control characters")
    if not _DECIMAL.match(size_line) or int(size_line) >= 1 << 64:
        raise CheckpointFormatError("the tree size is not ASCII decimal without leading zeros (below 2**64)")
    root_hash = _b64decode(root_line, CheckpointFormatError, "root hash")
    if len(root_hash) != ROOT_HASH_SIZE:
        raise CheckpointFormatError(f"the root hash is {len(root_hash)} bytes, not {ROOT_HASH_SIZE}")
    return Checkpoint(origin, int(size_line), root_hash, tuple(extensions))


def sign(note_text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """signed-note: the text, an empty line and one Ed25519 signature line by the key ``name``.

    The text must be non-empty, end with a newline, and hold no empty line (so a signed note is never
    signed again as if it were text) and no control character but newline.
    """
    _check_name(name)
    if not note_text.endswith("\n") or "\n\n" in note_text or note_text.startswith("\n"):
        raise MalformedNoteError("note text is non-empty lines, each ending with a newline")
    if not _valid_text(note_text):
        raise MalformedNoteError("note text holds a control character")
    signature = private_key.sign(note_text.encode())
    encoded = base64.b64encode(key_id(name, private_key.public_key()) + signature).decode()
    return f"{note_text}\n{_SIG_PREFIX}{name} {encoded}\n"


def _split(note: str | bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """signed-note: the text and the (key name, key ID || signature) pairs of the signature lines."""
    if isinstance(note, bytes):
        try:
            note = note.decode()
        except UnicodeDecodeError:
            raise MalformedNoteError("a signed note is UTF-8") from None
    if not _valid_text(note):
        raise MalformedNoteError("a signed note holds no control character but newline")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise MalformedNoteError("a signed note is text, an empty line and signature lines, each ending in newline")
    text, block = note[: split + 1], note[split + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise MalformedNoteError("a signed note has at least one signature line")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"a signed note has at most {MAX_SIGNATURES} signatures")
    signatures: list[tuple[str, bytes]] = []
    for line in lines:
        fields = line[len(_SIG_PREFIX) :].split(" ")
        if not line.startswith(_SIG_PREFIX) or len(fields) != 2:
            raise MalformedNoteError("a signature line is '— <key name> <base64 signature>'")
        name, encoded = fields
        _check_name(name)
        raw = _b64decode(encoded, MalformedNoteError, "signature")
        if len(raw) < 5:
            raise MalformedNoteError("a signature is a 4-byte key ID and signature bytes")
        signatures.append((name, raw))
    return text, signatures


def open_note(note: str | bytes, name: str, public_key: Ed25519PublicKey) -> str:
    """signed-note "Verifying": the note text, once a signature by (``name``, key ID) verifies.

    Signatures by other keys are ignored (cosigners, witnesses); a signature with this key's name and ID
    that does not verify is refused, not skipped, as golang.org/x/mod/sumdb/note does.
    """
    text, signatures = _split(note)
    expected_id = key_id(name, public_key)
    verified = False
    for sig_name, raw in signatures:
        if sig_name != name or raw[:4] != expected_id:
            continue
        try:
            public_key.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise SignatureError(f"invalid signature for key {name}+{expected_id.hex()}") from None
        verified = True
    if not verified:
        raise SignatureError(f"the note has no signature by key {name}+{expected_id.hex()}")
    return text


def verify(
    note: str | bytes, name: str, public_key: Ed25519PublicKey, *, expected_origin: str | None = None
) -> Checkpoint:
    """The checkpoint of a signed note, once its signature by ``name`` verifies (and its origin, if given)."""
    checkpoint = parse_checkpoint(open_note(note, name, public_key))
    if expected_origin is not None and checkpoint.origin != expected_origin:
        raise CheckpointFormatError(f"checkpoint of origin {checkpoint.origin!r}, not {expected_origin!r}")
    return checkpoint
