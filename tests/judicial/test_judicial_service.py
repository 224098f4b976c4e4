"""The judicial-records service on the real stack: the seeded records come back through GetRecord as the issuance
service sees them, only the issuance service and operators may call, the demo citizen's record is clean; the seed
gives about 1.4 % of a population a record, idempotently (tested on a database of its own)."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

import asyncpg
import grpc
import pytest

from issuance.judicial import JudicialRecord, seed_record
from issuance.judicial_store import PostgresJudicialRecordStore, seed_judicial_records, today_in_vietnam
from protos.issuance.v1 import judicial_pb2 as pb
from protos.issuance.v1 import judicial_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from registry.generator import generate
from services.judicial_codec import record_from_pb, record_to_pb
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as


@pytest.fixture(scope="module")
async def as_issuance(stack: Stack) -> AsyncIterator[pb_grpc.JudicialRecordsStub]:
    async with channel_as(stack, "judicial", "issuance") as channel:
        yield pb_grpc.JudicialRecordsStub(channel)


def _convicted(citizens: list[Citizen]) -> list[Citizen]:
    return [c for c in citizens if seed_record(c).convictions]


async def test_a_seeded_record_through_grpc(as_issuance: pb_grpc.JudicialRecordsStub, citizens: list[Citizen]) -> None:
    convicted = _convicted(citizens)
    assert convicted, "the seeded population has people with a record"
    for citizen in convicted:
        reply = await as_issuance.GetRecord(pb.GetRecordRequest(id_number=citizen.id_number), timeout=20)
        expected = seed_record(citizen)
        assert reply == record_to_pb(expected, today_in_vietnam())
        assert record_from_pb(reply) == expected
        assert [c.serial for c in reply.convictions] == list(range(1, len(expected.convictions) + 1))


async def test_a_clean_and_an_unknown_person(as_issuance: pb_grpc.JudicialRecordsStub, citizens: list[Citizen]) -> None:
    clean = next(c for c in citizens[1:] if not seed_record(c).convictions)
    reply = await as_issuance.GetRecord(pb.GetRecordRequest(id_number=clean.id_number), timeout=20)
    assert reply == pb.JudicialRecord(id_number=clean.id_number)
    nobody = "001085999999"
    assert nobody not in {c.id_number for c in citizens}
    reply = await as_issuance.GetRecord(pb.GetRecordRequest(id_number=nobody), timeout=20)
    assert reply == pb.JudicialRecord(id_number=nobody)


@pytest.mark.parametrize("raw", ["", "123", "00108501234X", "999085012345", "001985012345 1"])
async def test_a_malformed_id_number(as_issuance: pb_grpc.JudicialRecordsStub, raw: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await as_issuance.GetRecord(pb.GetRecordRequest(id_number=raw), timeout=20)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ID number" in (refused.value.details() or "")


async def test_the_demo_citizen_is_clean(as_issuance: pb_grpc.JudicialRecordsStub, info: StackInfo) -> None:
    demo = info.demo_citizen["id_number"]
    assert demo == next(iter(generate(1))).id_number
    reply = await as_issuance.GetRecord(pb.GetRecordRequest(id_number=demo), timeout=20)
    assert list(reply.convictions) == []


@pytest.mark.parametrize("caller", ["vault", "edge", "portal", "health", "consent"])
async def test_other_services_are_refused(stack: Stack, citizens: list[Citizen], caller: str) -> None:
    async with channel_as(stack, "judicial", caller) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.JudicialRecordsStub(channel).GetRecord(
                pb.GetRecordRequest(id_number=citizens[3].id_number), timeout=20
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_operator_may_look(info: StackInfo, citizens: list[Citizen]) -> None:
    citizen = _convicted(citizens)[0]
    async with info.channel("judicial") as channel:
        reply = await pb_grpc.JudicialRecordsStub(channel).GetRecord(
            pb.GetRecordRequest(id_number=citizen.id_number), timeout=20
        )
    assert record_from_pb(reply) == seed_record(citizen)


async def test_the_stack_seeded_the_registry_s_people(info: StackInfo, citizens: list[Citizen]) -> None:
    expected = {c.id_number for c in _convicted(citizens)} - {info.demo_citizen["id_number"]}
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        held = {r["id_number"] for r in await conn.fetch("SELECT DISTINCT id_number FROM judicial.convictions")}
    finally:
        await conn.close()
    assert held == expected


# --- the seed, on a database of its own ------------------------------------------------------------------------


def _migration() -> ModuleType:
    path = Path(__file__).parents[2] / "db" / "migrations" / "versions" / "0017_judicial.py"
    spec = importlib.util.spec_from_file_location("migration_0017", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
async def own_database(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database on the stack's server holding only ``judicial.convictions`` (migration 0017's tables)."""
    name = f"judicial_seed_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(info.postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = info.postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        await pool.execute("CREATE SCHEMA judicial")
        for statement in _migration().TABLES:
            await pool.execute(statement)
        yield pool
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


POPULATION = 12_000


async def test_the_seed_share_and_idempotence(own_database: asyncpg.Pool) -> None:
    population = list(generate(POPULATION))
    expected = [seed_record(c) for c in population]
    with_record = [r for r in expected if r.convictions]
    spared = with_record[0].id_number
    added = await seed_judicial_records(own_database, population, clean={spared})
    assert added == sum(len(r.convictions) for r in with_record[1:])
    people = await own_database.fetchval("SELECT count(DISTINCT id_number) FROM judicial.convictions")
    assert people == len(with_record) - 1
    assert 0.010 <= people / POPULATION <= 0.018  # about 1.4 %
    assert await seed_judicial_records(own_database, population) == len(with_record[0].convictions)  # spared: now
    assert await seed_judicial_records(own_database, population) == 0  # again: nothing new
    store = PostgresJudicialRecordStore(own_database)
    for record in with_record[:50]:
        assert await store.record(record.id_number) == record
    assert await store.record(population[-1].id_number) in (expected[-1], JudicialRecord(population[-1].id_number))


async def test_parallel_seeds_write_each_conviction_once(own_database: asyncpg.Pool) -> None:
    population = list(generate(POPULATION + 3000))[POPULATION:]  # people the other test did not seed
    wanted = sum(len(seed_record(c).convictions) for c in population)
    added = await asyncio.gather(*(seed_judicial_records(own_database, population) for _ in range(4)))
    assert sum(added) == wanted
    ids = [c.id_number for c in population]
    held = await own_database.fetchval("SELECT count(*) FROM judicial.convictions WHERE id_number = ANY($1)", ids)
    assert held == wanted


def test_today_is_vietnam_s_day() -> None:
    assert today_in_vietnam(datetime(2026, 12, 31, 17, 30, tzinfo=UTC)) == date(2027, 1, 1)


async def test_the_service_role_only_reads_its_schema(stack: Stack, citizens: list[Citizen]) -> None:
    conn = await asyncpg.connect(stack._service_dsn("judicial"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM judicial.convictions") > 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM judicial.convictions")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "UPDATE judicial.convictions SET court_expunged_on = now()::date WHERE id_number = $1",
                citizens[0].id_number,
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM registry.citizens")
    finally:
        await conn.close()
