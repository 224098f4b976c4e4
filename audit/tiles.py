"""C2SP tlog-tiles: tile and entry-bundle paths, their bytes, and a whole tile set's check (pure, no I/O).

c2sp.org/tlog-tiles, "Merkle Tree": tiles have height 8. The tile at level ``L``, index ``N`` holds up to 256
consecutive hashes ``node(8 * L, N * 256 + i)`` (audit/merkle.py's full-subtree hashes), so level 0 holds leaf
hashes. It is served at ``tile/<L>/<N>`` when full (8,192 bytes, immutable) and at ``tile/<L>/<N>.p/<W>``
when partial (``W`` = 1..255 hashes). ``<N>`` is written as zero-padded 3-digit path elements, all but the
last prefixed with ``x`` (1234067 → ``x001/x234/067``). The partial tile at level ``L`` of a tree of size
``s`` has ``floor(s / 256**L) mod 256`` hashes; empty tiles do not exist.

"Log entries": entry bundle ``tile/entries/<N>[.p/<W>]`` holds entries ``N * 256`` to ``N * 256 + W - 1``,
each prefixed by its length as a big-endian uint16.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from audit import merkle

HEIGHT = 8
WIDTH = 1 << HEIGHT
HASH = merkle.HASH_SIZE
MAX_LEVEL = 63
MAX_ENTRY = 0xFFFF
ENTRIES = "entries"

_GROUPS = r"(?:x[0-9]{3}/){0,6}[0-9]{3}"
_PATH = re.compile(
    rf"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>{_GROUPS})(?:\.p/(?P<width>[1-9][0-9]{{0,2}}))?\Z"
)


class TileError(ValueError):
    """A path that is not a tile path, or bytes that are not a tile or entry bundle."""


@dataclass(frozen=True, slots=True)
class TilePath:
    """One resource of the tile set: a hash tile (``level`` ≥ 0) or an entry bundle (``level`` None)."""

    level: int | None
    index: int
    width: int = WIDTH

    @property
    def partial(self) -> bool:
        return self.width < WIDTH

    def __str__(self) -> str:
        where = ENTRIES if self.level is None else str(self.level)
        suffix = f".p/{self.width}" if self.partial else ""
        return f"tile/{where}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """tlog-tiles: ``<N>`` as 3-digit elements, all but the last prefixed with ``x`` (``x001/x234/067``)."""
    if index < 0:
        raise TileError(f"tile index {index} is negative")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_path(path: str) -> TilePath:
    """The tile or bundle named by ``tile/...``: strict, so that only canonical paths pass (no ``..``, no
    leading zeros beyond the 3-digit groups, no group ``x000`` leading, width 1..255, level 0..63)."""
    match = _PATH.match(path)
    if match is None:
        raise TileError("not a tile path")
    raw_level, raw_index, raw_width = match.group("level"), match.group("index"), match.group("width")
    level = None if raw_level == ENTRIES else int(raw_level)
    if level is not None and level > MAX_LEVEL:
        raise TileError("tile levels are 0 to 63")
    index = int(raw_index.replace("x", "").replace("/", ""))
    width = WIDTH if raw_width is None else int(raw_width)
    if raw_width is not None and width >= WIDTH:
        raise TileError("a partial tile is 1 to 255 wide")
    parsed = TilePath(level, index, width)
    if str(parsed) != path:  # e.g. x000/123: an index written with a leading zero group
        raise TileError("not the canonical path of this tile")
    return parsed


def widths(level: int, size: int) -> tuple[int, int]:
    """(full tiles, width of the partial tile or 0) at hash-tile ``level`` of a tree of ``size``."""
    count = size >> (HEIGHT * level)
    return count >> HEIGHT, count & (WIDTH - 1)


def levels(size: int) -> int:
    """How many hash-tile levels a tree of ``size`` has (0 for the empty tree)."""
    level = 0
    while size >> (HEIGHT * level):
        level += 1
    return level


def tile_set(size: int) -> list[TilePath]:
    """Every tile and entry bundle a tree of ``size`` is served as (full ones, then the partial ones)."""
    paths: list[TilePath] = []
    for level in (None, *range(levels(size))):
        full, partial = widths(level or 0, size)
        paths += [TilePath(level, n) for n in range(full)]
        if partial:
            paths.append(TilePath(level, full, partial))
    return paths


def changed(old_size: int, new_size: int) -> list[TilePath]:
    """The tiles and bundles a tree growing from ``old_size`` to ``new_size`` adds (each at its new width)."""
    out: list[TilePath] = []
    for level in (None, *range(levels(new_size))):
        shift = HEIGHT * (level or 0)
        old_count, new_count = old_size >> shift, new_size >> shift
        if new_count == old_count:
            continue
        for n in range(old_count >> HEIGHT, ((new_count - 1) >> HEIGHT) + 1):
            width = min(WIDTH, new_count - n * WIDTH)
            out.append(TilePath(level, n, width))
    return out


def tile_bytes(hashes: Sequence[bytes]) -> bytes:
    if not 0 < len(hashes) <= WIDTH or any(len(h) != HASH for h in hashes):
        raise TileError("a tile is 1 to 256 hashes of 32 bytes")
    return b"".join(hashes)


def parse_tile(data: bytes, width: int) -> list[bytes]:
    if len(data) != width * HASH:
        raise TileError(f"a tile of width {width} is {width * HASH} bytes, not {len(data)}")
    return [data[i : i + HASH] for i in range(0, len(data), HASH)]


def bundle_bytes(entries: Sequence[bytes]) -> bytes:
    """tlog-tiles "Log entries": each entry prefixed by its big-endian uint16 length."""
    if not 0 < len(entries) <= WIDTH:
        raise TileError("an entry bundle holds 1 to 256 entries")
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise TileError("an entry is at most 65,535 bytes")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_bundle(data: bytes, width: int) -> list[bytes]:
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise TileError("an entry bundle ends inside a length prefix")
        length = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + length > len(data):
            raise TileError("an entry bundle ends inside an entry")
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    if len(entries) != width:
        raise TileError(f"an entry bundle of width {width} holds {len(entries)} entries")
    return entries


def node_in_tiles(level: int, index: int, tile: Callable[[int, int], Sequence[bytes]]) -> bytes:
    """``node(level, index)`` from hash tiles: ``tile(L, N)`` gives that tile's hashes (of whatever width).

    A node at level ``8L + r`` is the root of ``2**r`` consecutive hashes of tile ``L`` (tlog-tiles: the levels
    between are reconstructed by hashing); raises ``merkle.ProofError`` when the tile is too narrow.
    """
    tile_level, rest = divmod(level, HEIGHT)
    first = index << rest
    hashes = tile(tile_level, first >> HEIGHT)
    offset = first & (WIDTH - 1)
    span = hashes[offset : offset + (1 << rest)]
    if len(span) != 1 << rest:
        raise merkle.ProofError(f"tile {tile_level}/{first >> HEIGHT} does not hold node {level}/{index}")
    return merkle.root(span)
