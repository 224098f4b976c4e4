"""C2SP tlog-tiles paths, tile and bundle bytes, and the offline tile-set check (pure)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoint as notes
from audit import merkle, tiles, verify
from audit.compact import CompactRange
from audit.tiles import TilePath


def test_index_encoding_follows_the_spec_example() -> None:
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.encode_index(0) == "000"
    assert tiles.encode_index(5) == "005"
    assert tiles.encode_index(1000) == "x001/000"
    assert str(TilePath(0, 1234067, 8)) == "tile/0/x001/x234/067.p/8"
    assert str(TilePath(None, 1234067, 8)) == "tile/entries/x001/x234/067.p/8"
    assert str(TilePath(2, 3)) == "tile/2/003"


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/000",
        "tile/entries/x001/x234/067.p/8",
        "tile/63/001",
        "tile/2/x018/x446/x744/x073/x709/x551/615",
        "tile/1/x001/000.p/255",
    ],
)
def test_canonical_paths_parse_back(path: str) -> None:
    assert str(tiles.parse_path(path)) == path


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/../000",
        "tile/0/000/",
        "/tile/0/000",
        "tile/00/000",
        "tile/64/000",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/x000/123",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/08",
        "tile/entries/000.p/",
        "tile/-1/000",
        "tile/0/x001",
        "tile/x/000",
        "checkpoint",
        "tile/0/000\n",
        "tile/0/x1/000",
    ],
)
def test_other_paths_are_refused(path: str) -> None:
    with pytest.raises(tiles.TileError):
        tiles.parse_path(path)


def test_the_spec_example_of_a_tree_of_70000() -> None:
    paths = tiles.tile_set(70_000)
    hash_tiles = [p for p in paths if p.level is not None]
    assert len([p for p in hash_tiles if p.level == 0 and not p.partial]) == 273
    assert TilePath(0, 273, 112) in paths
    assert TilePath(1, 0) in paths
    assert TilePath(1, 1, 17) in paths
    assert TilePath(2, 0, 1) in paths
    assert len(hash_tiles) == 273 + 1 + 1 + 1 + 1
    assert [p for p in tiles.tile_set(256) if p.level is not None] == [TilePath(0, 0), TilePath(1, 0, 1)]


def test_changed_tiles_cover_exactly_the_difference() -> None:
    for old, new in [(0, 1), (0, 256), (255, 257), (100, 70_000), (65_535, 65_536), (3, 3)]:
        before, after = set(tiles.tile_set(old)), set(tiles.tile_set(new))
        assert set(tiles.changed(old, new)) == after - before, (old, new)


def test_bundles_round_trip_and_refuse_truncation() -> None:
    entries = [b"", b"a", b"x" * 300]
    data = tiles.bundle_bytes(entries)
    assert data[:2] == b"\x00\x00"
    assert data[2:4] == b"\x00\x01"
    assert tiles.parse_bundle(data, 3) == entries
    with pytest.raises(tiles.TileError):
        tiles.parse_bundle(data[:-1], 3)
    with pytest.raises(tiles.TileError):
        tiles.parse_bundle(data, 4)


def test_nodes_from_tiles_equal_the_tree() -> None:
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(70_000 // 50)]
    node = merkle.nodes_from_leaves(leaves)
    size = len(leaves)
    stored = {}
    for path in tiles.tile_set(size):
        if path.level is not None:
            stored[(path.level, path.index)] = [node(8 * path.level, path.index * 256 + i) for i in range(path.width)]
    for level in range(0, 11):
        for index in range(0, size >> level, 7):
            assert tiles.node_in_tiles(level, index, lambda lv, n: stored[(lv, n)]) == node(level, index)


def _log(n: int) -> tuple[dict[str, bytes], notes.Checkpoint, verify.Key, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    entries = [hashlib.sha256(str(i).encode()).hexdigest().encode() for i in range(n)]
    tree = CompactRange()
    for entry in entries:
        tree.append(merkle.leaf_hash(entry))
    node = merkle.nodes_from_leaves([merkle.leaf_hash(e) for e in entries])
    files: dict[str, bytes] = {}
    for path in tiles.tile_set(n):
        first = path.index * 256
        if path.level is None:
            files[str(path)] = tiles.bundle_bytes(entries[first : first + path.width])
        else:
            files[str(path)] = tiles.tile_bytes([node(8 * path.level, first + i) for i in range(path.width)])
    cp = notes.Checkpoint("example.test/log", n, tree.root())
    note = notes.sign(notes.format_checkpoint(cp), "example.test/log", key)
    files["checkpoint"] = note.encode()
    return files, cp, verify.Key("example.test/log", key.public_key()), key


def test_a_whole_tile_set_verifies_and_each_tampering_is_named() -> None:
    files, cp, key, _ = _log(600)
    checked = verify.checkpoint(files["checkpoint"], key)
    assert checked == cp
    assert verify.tile_set(cp, files.get) == 600
    bad = dict(files)
    bundle = bytearray(bad["tile/entries/001"])
    bundle[5] ^= 1
    bad["tile/entries/001"] = bytes(bundle)
    with pytest.raises(verify.Refused, match="tile/0/001: the leaf hash of entry 256"):
        verify.tile_set(cp, bad.get)
    bad = dict(files)
    bad["tile/1/000.p/2"] = bytes(32) + bad["tile/1/000.p/2"][32:]
    with pytest.raises(verify.Refused, match=r"tile/1/000\.p/2: the hash of node 8/0"):
        verify.tile_set(cp, bad.get)
    bad = dict(files)
    del bad["tile/entries/002.p/88"]
    with pytest.raises(verify.Refused, match="missing"):
        verify.tile_set(cp, bad.get)
    forged = notes.Checkpoint(cp.origin, cp.size, bytes(32))
    with pytest.raises(verify.Refused, match="root"):
        verify.tile_set(forged, files.get)
    note = bytearray(files["checkpoint"])
    note[len(note) - 10] ^= 1  # inside the signature's base64
    with pytest.raises(verify.Refused, match="checkpoint"):
        verify.checkpoint(bytes(note), key)
