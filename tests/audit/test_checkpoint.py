"""C2SP tlog-checkpoint bodies in C2SP signed notes with Ed25519, against published vectors and tampering."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoint as cp
from audit import merkle

# --- Published vectors: golang.org/x/mod sumdb/note/note_test.go (TestSign, TestOpen, TestNewVerifier). ---
# The Go signer key "PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>" carries this seed.
PETER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_B64 = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
ENOCH_B64 = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
PETER_SIG = f"— PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"— EnochRoot {ENOCH_B64}\n"

# The example body of c2sp.org/tlog-checkpoint (its key is not published, so only the body is checked).
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

ORIGIN = "dinhdanh.example/access-history"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()
ROOT = merkle.root([merkle.leaf_hash(b"event %d" % i) for i in range(5)])
CHECKPOINT = cp.Checkpoint(ORIGIN, 5, ROOT, ("timestamp 1764585600",))


def _signed() -> str:
    return cp.sign(cp.format_checkpoint(CHECKPOINT), ORIGIN, KEY)


def test_sign_reproduces_the_go_note_vector() -> None:
    key = Ed25519PrivateKey.from_private_bytes(PETER_SEED)
    assert cp.sign(GO_TEXT, "PeterNeumann", key) == GO_TEXT + "\n" + PETER_SIG
    assert cp.vkey("PeterNeumann", key.public_key()) == PETER_VKEY
    assert cp.key_id("PeterNeumann", key.public_key()).hex() == "c74f20a3"


def test_open_verifies_the_go_vector_and_ignores_other_signers() -> None:
    name, peter = cp.parse_vkey(PETER_VKEY)
    assert name == "PeterNeumann"
    assert cp.open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, name, peter) == GO_TEXT
    enoch_name, enoch = cp.parse_vkey(ENOCH_VKEY)
    assert cp.open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, enoch_name, enoch) == GO_TEXT
    with pytest.raises(cp.SignatureError, match="no signature by key EnochRoot"):
        cp.open_note((GO_TEXT + "\n" + PETER_SIG).encode(), enoch_name, enoch)


def test_a_bad_signature_by_the_expected_key_is_refused_not_skipped() -> None:
    name, peter = cp.parse_vkey(PETER_VKEY)
    corrupt = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(cp.SignatureError, match="invalid signature for key PeterNeumann"):
        cp.open_note(GO_TEXT + "\n" + PETER_SIG + corrupt, name, peter)


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT + "\n" + f"— Bad Name {PETER_B64}\n",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG * 101,
        GO_TEXT + "\n" + f"- PeterNeumann {PETER_B64}\n",
        GO_TEXT + "\n" + "— PeterNeumann x08go/ZJ!\n",
        GO_TEXT + "\n" + "— PeterNeumann AAAA\n",
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    """The bad messages of the Go TestOpen, and a few more (ASCII hyphen, bad base64, too short)."""
    name, peter = cp.parse_vkey(PETER_VKEY)
    with pytest.raises(cp.MalformedNoteError):
        cp.open_note(note, name, peter)


def test_a_note_that_is_not_utf8_is_refused() -> None:
    name, peter = cp.parse_vkey(PETER_VKEY)
    with pytest.raises(cp.MalformedNoteError, match="UTF-8"):
        cp.open_note(b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(), name, peter)


def test_mangled_verifier_keys_are_refused() -> None:
    """As the Go TestNewVerifier: every byte bumped, every proper substring, wrong length, wrong type."""
    refused = 0
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(cp.MalformedNoteError):
            cp.parse_vkey(mangled)
        refused += 1
    for i in range(len(PETER_VKEY)):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(cp.MalformedNoteError):
                    cp.parse_vkey(PETER_VKEY[i:j])
    with pytest.raises(cp.MalformedNoteError, match="verifier key"):
        cp.parse_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")  # 40 bytes
    with pytest.raises(cp.MalformedNoteError, match="not an Ed25519 key"):
        cp.parse_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert refused == len(PETER_VKEY)


def test_the_spec_example_body_parses_and_formats_back() -> None:
    checkpoint = cp.parse_checkpoint(SPEC_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert cp.format_checkpoint(checkpoint) == SPEC_BODY


def test_round_trip() -> None:
    note = _signed()
    assert note.startswith(f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\ntimestamp 1764585600\n\n— {ORIGIN} ")
    assert cp.verify(note, ORIGIN, PUB) == CHECKPOINT
    assert cp.verify(note.encode(), ORIGIN, PUB, expected_origin=ORIGIN) == CHECKPOINT
    published = cp.vkey(ORIGIN, PUB)
    assert "+" in published.split("+", 2)[2]  # this key's base64 holds a "+": parse_vkey must not split there
    name, public_key = cp.parse_vkey(published)
    assert name == ORIGIN
    assert cp.verify(note, name, public_key) == CHECKPOINT


def test_the_empty_tree_checkpoint_round_trips() -> None:
    empty = cp.Checkpoint(ORIGIN, 0, merkle.empty_root())
    assert cp.verify(cp.sign(cp.format_checkpoint(empty), ORIGIN, KEY), ORIGIN, PUB) == empty


def test_tampered_body_fails() -> None:
    note = _signed()
    for before, after in [("\n5\n", "\n6\n"), (ORIGIN + "\n", ORIGIN + "x\n"), ("1764585600", "1764585601")]:
        with pytest.raises(cp.SignatureError, match="invalid signature"):
            cp.verify(note.replace(before, after, 1), ORIGIN, PUB)
    root_line = base64.b64encode(ROOT).decode()
    other_root = base64.b64encode(bytes([ROOT[0] ^ 1]) + ROOT[1:]).decode()
    with pytest.raises(cp.SignatureError, match="invalid signature"):
        cp.verify(note.replace(root_line, other_root), ORIGIN, PUB)


def test_tampered_signature_fails() -> None:
    note = _signed()
    text, sig_line = note.split("\n\n")
    raw = base64.b64decode(sig_line.split(" ")[2])
    for i in (4, 20, len(raw) - 1):  # bytes of the signature itself, after the key ID
        flipped = raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :]
        bad = f"{text}\n\n— {ORIGIN} {base64.b64encode(flipped).decode()}\n"
        with pytest.raises(cp.SignatureError, match="invalid signature"):
            cp.verify(bad, ORIGIN, PUB)
    flipped_id = bytes([raw[0] ^ 1]) + raw[1:]  # a key ID that is not ours: not our signature at all
    with pytest.raises(cp.SignatureError, match="no signature by key"):
        cp.verify(f"{text}\n\n— {ORIGIN} {base64.b64encode(flipped_id).decode()}\n", ORIGIN, PUB)


def test_wrong_key_or_name_fails() -> None:
    note = _signed()
    other = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))).public_key()
    with pytest.raises(cp.SignatureError, match="no signature by key"):
        cp.verify(note, ORIGIN, other)
    with pytest.raises(cp.SignatureError, match="no signature by key"):
        cp.verify(note, "dinhdanh.example/other-log", PUB)


def test_extra_and_unknown_signatures_are_ignored() -> None:
    body = cp.format_checkpoint(CHECKPOINT)
    witness = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
    witness_line = cp.sign(body, "witness.example", witness).split("\n\n")[1]
    ours = _signed().split("\n\n")[1]
    unknown = "— someone.example/unknown AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    for block in (witness_line + ours, ours + unknown, unknown + witness_line + ours):
        assert cp.verify(f"{body}\n{block}", ORIGIN, PUB) == CHECKPOINT
    assert cp.open_note(f"{body}\n{witness_line}{ours}", "witness.example", witness.public_key()) == body


def test_expected_origin_is_enforced() -> None:
    with pytest.raises(cp.CheckpointFormatError, match=r"not 'other\.example/log'"):
        cp.verify(_signed(), ORIGIN, PUB, expected_origin="other.example/log")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("origin\n5\n", "an origin, a tree size and a root hash"),
        ("origin\n5\n" + base64.b64encode(ROOT).decode(), "ends with a newline"),
        ("\n5\n" + base64.b64encode(ROOT).decode() + "\n", "no empty lines"),
        ("origin\n5\n" + base64.b64encode(ROOT).decode() + "\n\next\n", "no empty lines"),
        ("origin\n05\n" + base64.b64encode(ROOT).decode() + "\n", "leading zeros"),
        ("origin\n-5\n" + base64.b64encode(ROOT).decode() + "\n", "ASCII decimal"),
        ("origin\n 5\n" + base64.b64encode(ROOT).decode() + "\n", "ASCII decimal"),
        ("origin\n٥\n" + base64.b64encode(ROOT).decode() + "\n", "ASCII decimal"),
        (f"origin\n{1 << 64}\n" + base64.b64encode(ROOT).decode() + "\n", "2\\*\\*64"),
        ("origin\n5\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n", "not standard base64"),
        ("origin\n5\n" + base64.b64encode(ROOT).decode().rstrip("=") + "\n", "not standard base64"),
        ("origin\n5\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "31 bytes"),
        ("origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "not canonical"),
    ],
)
def test_malformed_checkpoint_bodies_are_refused(body: str, reason: str) -> None:
    with pytest.raises(cp.CheckpointFormatError, match=reason):
        cp.parse_checkpoint(body)


def test_a_signed_note_that_is_not_a_checkpoint_is_refused() -> None:
    note = cp.sign("just a note\n", ORIGIN, KEY)
    with pytest.raises(cp.CheckpointFormatError):
        cp.verify(note, ORIGIN, PUB)


@pytest.mark.parametrize(
    "checkpoint",
    [
        cp.Checkpoint("", 1, ROOT),
        cp.Checkpoint("o\nrigin", 1, ROOT),
        cp.Checkpoint("origin", -1, ROOT),
        cp.Checkpoint("origin", 1 << 64, ROOT),
        cp.Checkpoint("origin", 1, ROOT[:16]),
        cp.Checkpoint("origin", 1, ROOT, ("",)),
        cp.Checkpoint("origin", 1, ROOT, ("a\tb",)),
    ],
)
def test_format_refuses_what_parse_would_refuse(checkpoint: cp.Checkpoint) -> None:
    with pytest.raises(cp.CheckpointFormatError):
        cp.format_checkpoint(checkpoint)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("abc", "PeterNeumann"),  # no final newline (Go TestSign "short text")
        ("", "PeterNeumann"),
        ("a\n\nb\n", "PeterNeumann"),  # an empty line: a signed note is not signed again as text
        ("a\x00b\n", "PeterNeumann"),
        (GO_TEXT, "a+b"),  # Go TestSign "bad name"
        (GO_TEXT, "Bad Name"),
        (GO_TEXT, ""),
    ],
)
def test_sign_refuses_malformed_text_and_names(text: str, name: str) -> None:
    with pytest.raises(cp.MalformedNoteError):
        cp.sign(text, name, KEY)
