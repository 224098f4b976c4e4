"""A real PostgreSQL failure of the audit insert, for the tests that a change and its audit row commit together.

A ``BEFORE INSERT`` trigger on ``audit.events`` raises for every row whose ``detail`` names a key (a consent id or
a client id) listed in ``public.test_rejected_audit``; ``rejecting(pool, key)`` lists the key for the duration of
a block. The trigger runs with its owner's rights (``SECURITY DEFINER``), so it works whichever role inserts; rows
of other keys pass untouched, so other tests sharing the database are not affected."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

SETUP = (
    "SELECT pg_advisory_xact_lock(4242)",
    "CREATE TABLE IF NOT EXISTS public.test_rejected_audit (key text PRIMARY KEY)",
    "CREATE OR REPLACE FUNCTION public.test_reject_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
    " SET search_path = pg_catalog, public AS $$ BEGIN"
    " IF EXISTS (SELECT 1 FROM public.test_rejected_audit r"
    " WHERE r.key IN (NEW.detail->>'consent_id', NEW.detail->>'client_id')) THEN"
    " RAISE EXCEPTION 'audit row rejected by the test'; END IF; RETURN NEW; END $$",
    "DROP TRIGGER IF EXISTS test_reject_audit ON audit.events",
    "CREATE TRIGGER test_reject_audit BEFORE INSERT ON audit.events FOR EACH ROW"
    " EXECUTE FUNCTION public.test_reject_audit()",
)


async def install(owner: asyncpg.Pool) -> None:
    async with owner.acquire() as connection, connection.transaction():
        for statement in SETUP:
            await connection.execute(statement)


@contextlib.asynccontextmanager
async def rejecting(owner: asyncpg.Pool, key: str | uuid.UUID) -> AsyncIterator[None]:
    """Every audit row naming ``key`` fails to insert while the block runs (the owner's pool)."""
    await install(owner)
    await owner.execute("INSERT INTO public.test_rejected_audit (key) VALUES ($1)", str(key))
    try:
        yield
    finally:
        await owner.execute("DELETE FROM public.test_rejected_audit WHERE key = $1", str(key))
