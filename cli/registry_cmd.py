"""``dinhdanh registry``: seed and look up the population registry."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import typer
from google.protobuf.json_format import MessageToDict
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli import views
from cli.output import JsonOption, VarOption, console, emit, run, stack_info
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc
from registry.seeding import seed as seed_citizens
from registry.store import PopulationStore

app = typer.Typer(help="The population registry (simulated national population database).", no_args_is_help=True)


@app.command()
def seed(
    count: int = typer.Option(5000, "--count", min=1, help="Citizens the registry should hold."),
    seed_value: int = typer.Option(2025, "--seed", help="Generator seed (same seed, same citizens)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Generate citizens deterministically and load those not on record yet."""
    info = stack_info(var, as_json)

    async def go() -> dict[str, object]:
        pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
        try:
            started = time.perf_counter()
            with Progress(
                TextColumn("seeding"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                disable=as_json,
            ) as bar:
                task = bar.add_task("seed", total=count)
                added = await seed_citizens(PopulationStore(pool), count, seed_value, lambda n: bar.advance(task, n))
            total = await PopulationStore(pool).count()
            return {
                "requested": count,
                "added": added,
                "total": total,
                "seconds": round(time.perf_counter() - started, 1),
            }
        finally:
            await pool.close()

    done = run(go, as_json)
    emit(done, as_json, lambda: console.print(
        f"the registry holds {done['total']:,} citizens ({done['added']:,} added in {done['seconds']} s)"))  # fmt: skip


@app.command()
def lookup(id_number: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """Show one citizen's record."""
    info = stack_info(var, as_json)

    async def go() -> dict[str, object]:
        async with info.channel("registry") as channel:
            citizen = await pb_grpc.PopulationRegistryStub(channel).GetCitizen(
                pb.GetCitizenRequest(id_number=id_number), timeout=10
            )
        return MessageToDict(citizen, preserving_proto_field_name=True)

    record = run(go, as_json)
    emit(record, as_json, lambda: console.print(views.citizen_card(record)))
