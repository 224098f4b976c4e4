"""Fill the registry with generated citizens in batches (the generator is deterministic)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from registry.generator import generate
from registry.store import PopulationStore

BATCH = 20_000


async def seed(
    store: PopulationStore, count: int, seed: int = 2025, progress: Callable[[int], None] | None = None
) -> int:
    """Load ``count`` generated citizens; ``progress`` is told how many each batch added."""
    citizens = generate(count, seed=seed)
    loaded = 0
    while batch := list(islice(citizens, BATCH)):
        loaded += await store.load(batch)
        if progress:
            progress(len(batch))
    return loaded
