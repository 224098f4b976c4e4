"""Merkle tree hashing and proofs of RFC 9162 §2.1 (Certificate Transparency v2), pure and without I/O.

Every tree here is the one of RFC 9162 §2.1.1: the hash of a list of n entries splits at the largest power
of two below n. Proofs are built from a ``NodeSource``: a callable ``node(level, index)`` giving the hash of
the *full* subtree at that level and index (leaves ``index * 2**level`` to ``(index + 1) * 2**level - 1``),
the way C2SP tlog-tiles store them. Hashes of the ragged right edge of a tree are computed from full
subtrees, so a store never needs to hold them.

Errors are split by whose fault they are:

* ``ProofError`` (a ``ValueError``) is raised for a claim that is impossible on its face (a negative size,
  an index not below the tree size, an old size above the new one): the caller asked a wrong question.
* ``verify_inclusion`` and ``verify_consistency`` return ``False`` for any proof that does not prove the
  claim (a wrong hash, a proof too long or too short, hashes of the wrong length): the proof is bad.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

HASH_SIZE = 32

# The hash of a full subtree: node(level, index) covers leaves [index << level, (index + 1) << level).
NodeSource = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A tree size, leaf index or pair of sizes that no proof can be asked for."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of one entry, ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node, ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    """RFC 9162 §2.1.1: the hash of the empty tree, the SHA-256 of the empty string."""
    return hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two smaller than ``n`` (for ``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree(start: int, end: int, node: NodeSource) -> bytes:
    """MTH(D[start:end]) of RFC 9162 §2.1.1, for ``start`` aligned as every range the proofs ask for is.

    A full, aligned range is one stored node; otherwise the range splits as §2.1.1 splits a tree, and only
    its right part can be ragged, so this asks ``node`` for O(log n) hashes.
    """
    size = end - start
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = _split(size)
    return node_hash(_subtree(start, start + k, node), _subtree(start + k, end, node))


def nodes_from_leaves(leaf_hashes: Sequence[bytes]) -> NodeSource:
    """A ``NodeSource`` over leaf hashes held in memory (full subtree hashes computed once, on demand)."""
    cache: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        if index < 0 or level < 0 or (index + 1) << level > len(leaf_hashes):
            raise ProofError(f"no full subtree at level {level}, index {index} in a tree of {len(leaf_hashes)}")
        if level == 0:
            return leaf_hashes[index]
        key = (level, index)
        if key not in cache:
            cache[key] = node_hash(node(level - 1, 2 * index), node(level - 1, 2 * index + 1))
        return cache[key]

    return node


def root_at(size: int, node: NodeSource) -> bytes:
    """RFC 9162 §2.1.1: the root hash of the first ``size`` entries, from full subtree hashes."""
    if size < 0:
        raise ProofError(f"tree size {size} is negative")
    if size == 0:
        return empty_root()
    return _subtree(0, size, node)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1: the root hash of a tree of these leaf hashes (``empty_root()`` for none)."""
    return root_at(len(leaf_hashes), nodes_from_leaves(leaf_hashes))


def inclusion_proof(index: int, size: int, node: NodeSource) -> list[bytes]:
    """RFC 9162 §2.1.3.1: the audit path PATH(index, D[0:size]), the hash nearest the leaf first."""
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(_subtree(start + k, end, node))
            end = start + k
        else:
            proof.append(_subtree(start, start + k, node))
            start += k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, node: NodeSource) -> list[bytes]:
    """RFC 9162 §2.1.4.1: PROOF(old_size, D[0:new_size]); empty when ``old_size`` is 0 or ``new_size``.

    The empty tree is a prefix of every tree, so its proof is empty (RFC 9162 defines proofs for
    ``0 < old_size < new_size`` only; this is the convention of transparency-dev/merkle).
    """
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, whole = 0, new_size, True  # SUBPROOF(old_size - start, D[start:end], whole)
    while old_size != end:
        k = _split(end - start)
        if old_size <= start + k:
            proof.append(_subtree(start + k, end, node))
            end = start + k
        else:
            proof.append(_subtree(start, start + k, node))
            start, whole = start + k, False
    if not whole:
        proof.append(_subtree(start, end, node))
    proof.reverse()
    return proof


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _well_formed(hashes: Sequence[bytes]) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree of ``root_hash``.

    Raises ``ProofError`` when ``index`` is not below ``size``; returns ``False`` for a proof that fails.
    """
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    if not _well_formed([leaf, root_hash, *proof]):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and _equal(r, root_hash)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: whether ``proof`` shows the tree ``old_root`` is a prefix of the tree ``new_root``.

    Equal sizes need an empty proof and equal roots; from size 0 the proof must be empty (see
    ``consistency_proof``). Raises ``ProofError`` when ``old_size > new_size``; returns ``False`` for a
    proof that fails.
    """
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if not _well_formed([old_root, new_root, *proof]):
        return False
    if old_size == new_size:
        return not proof and _equal(old_root, new_root)
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and _equal(fr, old_root) and _equal(sr, new_root)
