"""The sequencer's in-memory right edge gives the RFC 9162 root and exactly the full subtrees to store."""

from __future__ import annotations

from audit import merkle
from audit.compact import CompactRange


def test_roots_and_new_nodes_match_the_reference() -> None:
    leaves = [merkle.leaf_hash(bytes([i % 256, i // 256])) for i in range(600)]
    node = merkle.nodes_from_leaves(leaves)
    tree = CompactRange()
    made: dict[tuple[int, int], bytes] = {}
    assert tree.root() == merkle.empty_root()
    for i, leaf in enumerate(leaves):
        for level, index, value in tree.append(leaf):
            assert (level, index) not in made
            made[(level, index)] = value
        assert tree.root() == merkle.root(leaves[: i + 1])
        if i in (0, 1, 6, 255, 256, 511, 599):
            again = CompactRange.load(i + 1, node)
            assert again.root() == tree.root()
    expected = {(lv, ix) for lv in range(1, 10) for ix in range(600 >> lv)}
    assert set(made) == expected
    assert all(made[key] == node(*key) for key in made)
