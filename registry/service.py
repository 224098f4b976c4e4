"""Registry use cases: look up one citizen (the registry is read-only to the platform)."""

from __future__ import annotations

from collections.abc import Callable

from core.errors import InvalidArgument, NotFound
from registry.citizen import Citizen
from registry.idnumber import InvalidIdNumber, parse
from registry.store import PopulationStore


class RegistryService:
    def __init__(self, store: PopulationStore, resolve_subject: Callable[[str, str | None], str | None]) -> None:
        """``resolve_subject`` turns an OpenID ``sub`` (and a pairwise one's sector) back into an ID number
        (identity.oidc.subjects)."""
        self._store = store
        self._resolve = resolve_subject

    async def citizen(self, id_number: str) -> Citizen:
        try:
            number = parse(id_number).value
        except InvalidIdNumber as error:
            raise InvalidArgument(str(error)) from None
        citizen = await self._store.get(number)
        if citizen is None:
            raise NotFound("no citizen with this ID number")
        return citizen

    async def own_record(self, subject: str, sector: str | None = None) -> Citizen:
        """The record of the citizen a verified token names (a pairwise ``subject`` with its ``sector``)."""
        id_number = self._resolve(subject, sector)
        citizen = await self._store.get(id_number) if id_number else None
        if citizen is None:
            raise NotFound("no citizen on record for this token's subject")
        return citizen

    async def count(self) -> int:
        return await self._store.count()
