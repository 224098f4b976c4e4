"""RFC 9162 §2.1 Merkle math against a literal reference implementation and published test vectors."""

from __future__ import annotations

import hashlib
import random

import pytest

from audit import merkle

# --- Reference: the recursive definitions of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1, written literally. ---


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


MAX = 64
ENTRIES = [f"entry {i}".encode() for i in range(2 * MAX)]  # the trees are of up to MAX; larger ones for probes
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]
NODE = merkle.nodes_from_leaves(LEAVES)
ROOTS = [ref_mth(ENTRIES[:n]) for n in range(2 * MAX + 1)]


def _flip(proof: list[bytes], i: int) -> list[bytes]:
    wrong = list(proof)
    wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
    return wrong


# --- Published vectors: transparency-dev/merkle testonly/constants.go (LeafInputs, RootHashes) and
# proof/verify_test.go (inclusionProofs, consistencyProofs); the same data as certificate-transparency-go. ---

VECTOR_INPUTS = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
VECTOR_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
H = {  # named node hashes of the vectors' tree (testonly/constants.go NodeHashes: level, index)
    "0.0": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0.1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0.4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "0.6": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "1.0": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "1.1": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "1.2": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "1.3": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "2.0": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "2.1": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
}
# (0-based leaf index, tree size, proof); verify_test.go numbers leaves from 1.
VECTOR_INCLUSION = [
    (0, 1, []),
    (0, 8, ["0.1", "1.1", "2.1"]),
    (5, 8, ["0.4", "1.3", "2.0"]),
    (2, 3, ["1.0"]),
    (1, 5, ["0.0", "1.1", "0.4"]),
]
VECTOR_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["0.1", "1.1", "2.1"]),
    (6, 8, ["1.2", "1.3", "2.0"]),
    (2, 5, ["1.1", "0.4"]),
    (6, 7, ["1.2", "0.6", "2.0"]),
]
VECTOR_LEAVES = [merkle.leaf_hash(e) for e in VECTOR_INPUTS]
VECTOR_NODE = merkle.nodes_from_leaves(VECTOR_LEAVES)


def _hashes(names: list[str]) -> list[bytes]:
    return [bytes.fromhex(H[name]) for name in names]


def test_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"") == bytes.fromhex(H["0.0"])
    assert merkle.empty_root() == hashlib.sha256(b"").digest()
    assert merkle.node_hash(bytes.fromhex(H["0.0"]), bytes.fromhex(H["0.1"])) == bytes.fromhex(H["1.0"])


@pytest.mark.parametrize("size", range(9))
def test_root_matches_published_vector(size: int) -> None:
    assert merkle.root(VECTOR_LEAVES[:size]) == VECTOR_ROOTS[size]
    assert ref_mth(VECTOR_INPUTS[:size]) == VECTOR_ROOTS[size]


def test_full_subtree_nodes_match_published_vector() -> None:
    for name, value in H.items():
        level, index = (int(part) for part in name.split("."))
        assert VECTOR_NODE(level, index).hex() == value


@pytest.mark.parametrize(("index", "size", "names"), VECTOR_INCLUSION)
def test_inclusion_proof_matches_published_vector(index: int, size: int, names: list[str]) -> None:
    proof = merkle.inclusion_proof(index, size, VECTOR_NODE)
    assert proof == _hashes(names)
    assert merkle.verify_inclusion(VECTOR_LEAVES[index], index, size, proof, VECTOR_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "names"), VECTOR_CONSISTENCY)
def test_consistency_proof_matches_published_vector(old: int, new: int, names: list[str]) -> None:
    proof = merkle.consistency_proof(old, new, VECTOR_NODE)
    assert proof == _hashes(names)
    assert merkle.verify_consistency(old, new, VECTOR_ROOTS[old], VECTOR_ROOTS[new], proof)


def test_roots_match_reference_for_every_size() -> None:
    for n in range(MAX + 1):
        assert merkle.root(LEAVES[:n]) == ROOTS[n], n
        assert merkle.root_at(n, NODE) == ROOTS[n], n


def test_inclusion_proofs_match_reference_and_verify_for_every_index() -> None:
    for n in range(1, MAX + 1):
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, NODE)
            assert proof == ref_path(m, ENTRIES[:n]), (m, n)
            assert merkle.verify_inclusion(LEAVES[m], m, n, proof, ROOTS[n]), (m, n)


def test_consistency_proofs_match_reference_and_verify_for_every_pair() -> None:
    for n in range(1, MAX + 1):
        for m in range(n + 1):
            proof = merkle.consistency_proof(m, n, NODE)
            expected = ref_proof(m, ENTRIES[:n]) if 0 < m < n else []
            assert proof == expected, (m, n)
            assert merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof), (m, n)


def test_proofs_read_only_full_subtrees() -> None:
    """A store of full subtrees (tiles) suffices: the node source is never asked for a ragged one."""
    asked: list[tuple[int, int]] = []

    def node(level: int, index: int) -> bytes:
        assert (index + 1) << level <= 37
        asked.append((level, index))
        return NODE(level, index)

    assert merkle.root_at(37, node) == ROOTS[37]
    assert merkle.inclusion_proof(36, 37, node) == ref_path(36, ENTRIES[:37])
    assert merkle.consistency_proof(13, 37, node) == ref_proof(13, ENTRIES[:37])
    assert asked


def test_tampered_inclusion_proofs_fail() -> None:
    for n in range(1, MAX + 1):
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, NODE)
            leaf, good_root = LEAVES[m], ROOTS[n]
            for i in range(len(proof)):
                assert not merkle.verify_inclusion(leaf, m, n, _flip(proof, i), good_root), (m, n, i)
            assert not merkle.verify_inclusion(leaf, m, n, [*proof, good_root], good_root), (m, n)
            assert not merkle.verify_inclusion(leaf, m, n, [good_root, *proof], good_root), (m, n)
            if proof:
                assert not merkle.verify_inclusion(leaf, m, n, proof[:-1], good_root), (m, n)
            for other in {m - 1, m + 1, m ^ 2} - {m}:
                if 0 <= other < n:
                    assert not merkle.verify_inclusion(leaf, other, n, proof, good_root), (m, other, n)
            # A size is bound to its root by the signed checkpoint: a proof must not pass for another tree. (With
            # the same root, a neighbouring size can share the proof's shape, e.g. leaf 0 in sizes 3 and 4.)
            for other_size in {n - 1, n + 1, n * 2, n // 2} - {n}:
                if other_size > m:
                    other_root = ROOTS[other_size]
                    assert not merkle.verify_inclusion(leaf, m, other_size, proof, other_root), (m, n, other_size)
            for other_size in {n * 2, n // 2} - {n}:
                if other_size > m:
                    assert not merkle.verify_inclusion(leaf, m, other_size, proof, good_root), (m, n, other_size)
            assert not merkle.verify_inclusion(merkle.leaf_hash(b"other"), m, n, proof, good_root), (m, n)
            assert not merkle.verify_inclusion(leaf, m, n, proof, merkle.empty_root()), (m, n)


def test_tampered_consistency_proofs_fail() -> None:
    for n in range(2, MAX + 1):
        for m in range(1, n):
            proof = merkle.consistency_proof(m, n, NODE)
            old_root, new_root = ROOTS[m], ROOTS[n]

            def ok(proof: list[bytes], m: int = m, n: int = n, a: bytes = old_root, b: bytes = new_root) -> bool:
                return merkle.verify_consistency(m, n, a, b, proof)

            for i in range(len(proof)):
                assert not ok(_flip(proof, i)), (m, n, i)
            assert not ok([]), (m, n)
            assert not ok(proof[:-1]), (m, n)
            assert not ok([*proof, old_root]), (m, n)
            assert not ok([*proof, new_root]), (m, n)
            assert not ok([proof[0], *proof]), (m, n)
            assert not ok([new_root, *proof]), (m, n)
            assert not ok(proof, b=old_root), (m, n)
            assert not ok(proof, a=new_root, b=old_root), (m, n)
            for other in {m - 1, m + 1, m ^ 2} - {m}:
                if 0 < other < n:
                    assert not ok(proof, m=other, a=ROOTS[m]), (m, other, n)
            for other_size in {n - 1, n + 1, n * 2, n // 2} - {n}:
                if other_size > m:
                    assert not ok(proof, n=other_size, b=ROOTS[other_size]), (m, n, other_size)
            for other_size in {n * 2, n // 2} - {n}:
                if other_size > m:
                    assert not ok(proof, n=other_size), (m, n, other_size)


def test_trivial_consistency_cases() -> None:
    root = ROOTS[5]
    assert merkle.verify_consistency(5, 5, root, root, [])
    assert not merkle.verify_consistency(5, 5, root, ROOTS[6], [])
    assert not merkle.verify_consistency(5, 5, root, root, [root])
    assert merkle.verify_consistency(0, 5, merkle.empty_root(), root, [])
    assert not merkle.verify_consistency(0, 5, merkle.empty_root(), root, [root])


def test_hashes_of_the_wrong_length_fail() -> None:
    proof = merkle.inclusion_proof(3, 10, NODE)
    assert not merkle.verify_inclusion(LEAVES[3], 3, 10, [*proof[:-1], proof[-1][:-1]], ROOTS[10])
    assert not merkle.verify_inclusion(LEAVES[3][:31], 3, 10, proof, ROOTS[10])
    assert not merkle.verify_inclusion(LEAVES[0], 0, 1, [], b"")
    assert not merkle.verify_consistency(3, 10, ROOTS[3], ROOTS[10] + b"\x00", merkle.consistency_proof(3, 10, NODE))


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (-1, 4), (4, 4), (0, -1)])
def test_impossible_inclusion_claims_raise(index: int, size: int) -> None:
    with pytest.raises(merkle.ProofError, match="not in a tree"):
        merkle.inclusion_proof(index, size, NODE)
    with pytest.raises(merkle.ProofError, match="not in a tree"):
        merkle.verify_inclusion(LEAVES[0], index, size, [], ROOTS[1])


@pytest.mark.parametrize(("old", "new"), [(2, 1), (-1, 3), (1, 0)])
def test_impossible_consistency_claims_raise(old: int, new: int) -> None:
    with pytest.raises(merkle.ProofError, match="no consistency proof"):
        merkle.consistency_proof(old, new, NODE)
    with pytest.raises(merkle.ProofError, match="no consistency proof"):
        merkle.verify_consistency(old, new, ROOTS[1], ROOTS[1], [])


def test_memory_node_source_refuses_a_subtree_it_does_not_hold() -> None:
    with pytest.raises(merkle.ProofError, match="no full subtree"):
        merkle.nodes_from_leaves(LEAVES[:5])(1, 2)
    with pytest.raises(merkle.ProofError, match="tree size -1"):
        merkle.root_at(-1, NODE)


def test_larger_trees_match_reference_on_sampled_proofs() -> None:
    """Beyond 64 leaves (several tile-sized levels), a fixed sample of proofs against the reference."""
    rng = random.Random(9162)
    entries = [f"big {i}".encode() for i in range(600)]
    node = merkle.nodes_from_leaves([merkle.leaf_hash(e) for e in entries])
    for _ in range(40):
        n = rng.randint(65, 600)
        m = rng.randrange(n)
        old = rng.randint(1, n)
        new_root = ref_mth(entries[:n])
        assert merkle.root_at(n, node) == new_root
        proof = merkle.inclusion_proof(m, n, node)
        assert proof == ref_path(m, entries[:n])
        assert merkle.verify_inclusion(merkle.leaf_hash(entries[m]), m, n, proof, new_root)
        consistency = merkle.consistency_proof(old, n, node)
        assert consistency == (ref_proof(old, entries[:n]) if old < n else [])
        assert merkle.verify_consistency(old, n, ref_mth(entries[:old]), new_root, consistency)
