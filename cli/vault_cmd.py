"""``dinhdanh vault``: crypto-shred a citizen's vault, rotate a citizen's KEK, run the upkeep (direct PostgreSQL
and S3 access)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
import typer

from cli.output import JsonOption, VarOption, emit, fail, run, stack_info
from core.errors import InvalidArgument
from core.keys.provider import KeyUnavailable
from stack.secrets import SecretStore
from vault import admin
from vault.documents import check_id_number
from vault.keyring import Keyring
from vault.objects import ObjectStore
from vault.store import VaultStore
from vault.upkeep import Janitor, Upkept
from vault.upkeep_store import UpkeepStore

app = typer.Typer(help="The citizen document vault: erase (crypto-shred), rotate keys, purge.", no_args_is_help=True)
T = TypeVar("T")
MISSING_SHOWN = 100  # document versions without their object, listed by upkeep (all are counted)


def _with_vault(var: Path, as_json: bool, action: Callable[[Keyring, VaultStore], Awaitable[T]]) -> T:
    info = stack_info(var, as_json)
    try:
        keys = SecretStore(var / "secrets").keys("vault")  # the operator acts as the vault, with its keys
    except KeyUnavailable as error:
        fail(f"{error}; start the platform once with `dinhdanh up`", as_json)
        raise

    async def go() -> T:
        pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
        try:
            store = VaultStore(pool)
            return await action(Keyring(keys, store), store)
        finally:
            await pool.close()

    return run(go, as_json)  # type: ignore[no-any-return]


def _checked(id_number: str, as_json: bool) -> str:
    try:
        return check_id_number(id_number)
    except InvalidArgument as error:
        fail(error.message, as_json)
        raise


@app.command("shred")
def shred(id_number: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """Destroy the citizen's key-encryption key: every document of theirs becomes unreadable, for good."""
    _checked(id_number, as_json)
    done = _with_vault(var, as_json, lambda keyring, store: admin.shred(keyring, store, id_number))
    emit({"shredded": done.kek_rows > 0, "kek_rows": done.kek_rows, "documents": done.documents}, as_json)


@app.command("rotate-kek")
def rotate_kek(id_number: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """A new KEK version for the citizen; every data key is rewrapped (objects are untouched)."""
    _checked(id_number, as_json)
    done = _with_vault(var, as_json, lambda keyring, store: admin.rotate(keyring, store, id_number))
    if done is None:
        fail("this citizen has no vault key (no document yet, or shredded)", as_json)
        raise typer.Exit(1)
    emit({"kek_version": done.kek_version, "data_keys": done.data_keys}, as_json)


@app.command("upkeep")
def upkeep(
    grace: float = typer.Option(
        3600, "--grace", min=0, help="Seconds an upload may take before it is swept (0: every pending upload)."
    ),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Purge documents past their retention and sweep objects of uploads that never committed, now (every
    vault replica also does it every few minutes); then report document versions whose object is missing."""
    info = stack_info(var, as_json)
    objects = ObjectStore(info.s3_client())

    async def go() -> tuple[Upkept, list[str]]:
        pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
        try:
            janitor = Janitor(UpkeepStore(pool), objects.remove, timedelta(seconds=grace))
            return await janitor.run_once(), await janitor.missing(objects.names)
        finally:
            await pool.close()
            objects.close()

    done, missing = run(go, as_json)
    shown = {"purged": done.purged, "swept": done.swept, "missing": len(missing)}
    emit(shown | {"missing_documents": missing[:MISSING_SHOWN]}, as_json)
    if missing:
        raise typer.Exit(3)
