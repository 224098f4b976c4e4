"""Offline checks of the transparency log with nothing but its published verifier key (pure, no I/O).

- ``checkpoint``: a C2SP signed note by the key (c2sp.org/signed-note "Verifying"), a tlog-checkpoint body.
- ``inclusion``: RFC 9162 §2.1.3.2, a leaf (or leaf hash) at an index in the tree of a verified checkpoint.
- ``consistency``: RFC 9162 §2.1.4.2 between two verified checkpoints.
- ``tile_set``: a whole downloaded C2SP tlog-tiles set of one checkpoint: every entry bundle hashed into leaf
  hashes (RFC 9162 §2.1.1), every hash tile equal to the tree those leaves make, the root equal to the
  checkpoint's.

Each failure is a ``Refused`` naming what failed (the file or proof, and why).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audit import checkpoint as notes
from audit import merkle, tiles


class Refused(Exception):
    """Verification failed; the message names what and why, in one line."""


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    public_key: Any

    @classmethod
    def parse(cls, vkey: str) -> Key:
        try:
            name, public = notes.parse_vkey(vkey.strip())
        except notes.NoteError as error:
            raise Refused(f"key: {error}") from None
        return cls(name, public)


def checkpoint(note: bytes | str, key: Key, origin: str | None = None, what: str = "checkpoint") -> notes.Checkpoint:
    try:
        return notes.verify(note, key.name, key.public_key, expected_origin=origin)
    except notes.SignatureError as error:
        raise Refused(f"{what}: signature refused ({error})") from None
    except notes.NoteError as error:
        raise Refused(f"{what}: not a valid checkpoint ({error})") from None


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise Refused(f"{what} is not base64") from None


def inclusion(proof: dict[str, Any], cp: notes.Checkpoint) -> int:
    """Checks a proof ``{"index", "tree_size", "hashes": [b64…], "leaf": b64 | "leaf_hash": b64}``; its index."""
    try:
        index, size = int(proof["index"]), int(proof["tree_size"])
        hashes = [_b64(h, "a proof hash") for h in proof["hashes"]]
        leaf_hash = merkle.leaf_hash(_b64(proof["leaf"], "leaf")) if "leaf" in proof else _b64(
            proof["leaf_hash"], "leaf_hash")  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise Refused(f"inclusion proof: malformed ({type(error).__name__}: {error})") from None
    if size != cp.size:
        raise Refused(f"inclusion proof: for a tree of {size}, the checkpoint is of {cp.size}")
    try:
        ok = merkle.verify_inclusion(leaf_hash, index, size, hashes, cp.root_hash)
    except merkle.ProofError as error:
        raise Refused(f"inclusion proof: {error}") from None
    if not ok:
        raise Refused(f"inclusion proof: leaf {index} is not in the tree of the checkpoint (size {size})")
    return index


def consistency(old: notes.Checkpoint, new: notes.Checkpoint, hashes: list[bytes]) -> None:
    if old.origin != new.origin:
        raise Refused(f"consistency: checkpoints of two logs ({old.origin!r}, {new.origin!r})")
    if old.size > new.size:
        raise Refused(f"consistency: the old checkpoint ({old.size}) is larger than the new one ({new.size})")
    if not merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, hashes):
        raise Refused(f"consistency: the tree of size {new.size} does not extend the tree of size {old.size}")


def parse_proof_file(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise Refused("proof file: not JSON") from None
    if not isinstance(value, dict):
        raise Refused("proof file: not a JSON object")
    return value


def tile_set(cp: notes.Checkpoint, read: Callable[[str], bytes | None]) -> int:
    """Checks every resource of the tile set of ``cp`` (``read(path)``: its bytes, None when absent); the
    number of entries checked."""
    paths = tiles.tile_set(cp.size)
    leaves: list[bytes] = []
    for path in (p for p in paths if p.level is None):
        data = _read(read, path)
        try:
            entries = tiles.parse_bundle(data, path.width)
        except tiles.TileError as error:
            raise Refused(f"{path}: {error}") from None
        leaves += [merkle.leaf_hash(entry) for entry in entries]
    node = merkle.nodes_from_leaves(leaves)
    for path in (p for p in paths if p.level is not None):
        assert path.level is not None
        try:
            hashes = tiles.parse_tile(_read(read, path), path.width)
        except tiles.TileError as error:
            raise Refused(f"{path}: {error}") from None
        for i, got in enumerate(hashes):
            index = path.index * tiles.WIDTH + i
            if got != node(tiles.HEIGHT * path.level, index):
                what = (
                    "the leaf hash of entry " if path.level == 0 else f"the hash of node {tiles.HEIGHT * path.level}/"
                )
                raise Refused(f"{path}: {what}{index} does not match the entry bundles")
    if merkle.root_at(cp.size, node) != cp.root_hash:
        raise Refused(f"checkpoint: the entries' root is not the root of the checkpoint (size {cp.size})")
    return len(leaves)


def _read(read: Callable[[str], bytes | None], path: tiles.TilePath) -> bytes:
    data = read(str(path))
    if data is None:
        raise Refused(f"{path}: missing from the tile set")
    return data
