"""The right edge of an append-only Merkle tree (RFC 9162 §2.1.1), pure: what the sequencer keeps in memory.

A tree of size ``n`` is, left to right, one full subtree per set bit of ``n`` (largest first). Appending a leaf
pushes its hash and merges equal-height neighbours, which yields exactly the new full-subtree hashes
``node(level, index)`` (audit/merkle.py) that the store must record; the root folds the edge right to left.
"""

from __future__ import annotations

from collections.abc import Callable

from audit import merkle


class CompactRange:
    def __init__(self, size: int = 0, edge: list[bytes] | None = None) -> None:
        """``edge``: the full-subtree hashes of the set bits of ``size``, largest first."""
        if len(edge or []) != bin(size).count("1"):
            raise ValueError("the edge holds one hash per set bit of the size")
        self.size = size
        self._edge: list[tuple[int, bytes]] = []
        bits = [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]
        self._edge = list(zip(bits, edge or [], strict=True))

    @staticmethod
    def edge_nodes(size: int) -> list[tuple[int, int]]:
        """The (level, index) of each full subtree on the edge of a tree of ``size``, largest first."""
        out: list[tuple[int, int]] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out

    @classmethod
    def load(cls, size: int, node: Callable[[int, int], bytes]) -> CompactRange:
        return cls(size, [node(level, index) for level, index in cls.edge_nodes(size)])

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf; returns the full subtrees it completes above level 0: ``(level, index, hash)``."""
        index = self.size
        self._edge.append((0, leaf_hash))
        made: list[tuple[int, int, bytes]] = []
        while len(self._edge) > 1 and self._edge[-1][0] == self._edge[-2][0]:
            (level, right), (_, left) = self._edge.pop(), self._edge.pop()
            merged = merkle.node_hash(left, right)
            self._edge.append((level + 1, merged))
            made.append((level + 1, index >> (level + 1), merged))
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self._edge:
            return merkle.empty_root()
        hashes = [h for _, h in self._edge]
        result = hashes[-1]
        for left in reversed(hashes[:-1]):
            result = merkle.node_hash(left, result)
        return result

    def copy(self) -> CompactRange:
        return CompactRange(self.size, [h for _, h in self._edge])
