"""Registry use cases: look up one citizen (the registry is read-only to the platform)."""

from __future__ import annotations

from core.errors import InvalidArgument, NotFound
from registry.citizen import Citizen
from registry.idnumber import InvalidIdNumber, parse
from registry.store import PopulationStore


class RegistryService:
    def __init__(self, store: PopulationStore) -> None:
        self._store = store

    async def citizen(self, id_number: str) -> Citizen:
        try:
            number = parse(id_number).value
        except InvalidIdNumber as error:
            raise InvalidArgument(str(error)) from None
        citizen = await self._store.get(number)
        if citizen is None:
            raise NotFound("no citizen with this ID number")
        return citizen

    async def count(self) -> int:
        return await self._store.count()
