"""``dinhdanh up``: start the platform, print what runs where, keep every process running until Ctrl-C.

A process that dies is said at once and started again with back-off (``Stack.supervise``); with
``--json`` these messages go to stderr as JSON lines (``{"event": …}``), stdout keeps its one object.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.output import JsonOption, VarOption, console, fail
from stack.info import StackInfo
from stack.ports import Ports
from stack.postgres import StackError

if TYPE_CHECKING:  # the supervisor brings alembic and SQLAlchemy: imported by `up`, not by every command
    from stack.supervisor import Stack


def up(
    var: Path = VarOption,
    free_ports: bool = typer.Option(False, "--free-ports", help="Pick free ports instead of the fixed ones."),
    seed_count: int = typer.Option(5000, "--seed-count", min=1, help="Citizens to generate on first start."),
    as_json: bool = JsonOption,
) -> None:
    """Start PostgreSQL, SeaweedFS S3 and every service; stop them all on Ctrl-C."""
    say = _json_event if as_json else (lambda msg: console.print(f"[dim]…[/] {escape(msg)}"))
    progress = (
        None
        if as_json
        else Progress(
            TextColumn("seeding registry"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        )
    )
    task: list[int] = []

    def on_seed(done: int, total: int) -> None:
        if progress is None:
            return
        if not task:
            progress.start()
            task.append(progress.add_task("seed", total=total))
        progress.update(task[0], completed=done)
        if done >= total:
            progress.stop()

    from stack.supervisor import Stack

    stack = Stack(var, Ports.free() if free_ports else Ports(), seed_count, say=say, on_seed_progress=on_seed)
    try:
        asyncio.run(_run(stack, as_json))
    except StackError as error:
        fail(str(error), as_json)


async def _run(stack: Stack, as_json: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        info = await stack.start()
        if as_json:
            print(json.dumps(info.as_dict(), ensure_ascii=False), flush=True)
        else:
            _show(info, stack)
        await stack.supervise(stop)
    finally:
        await asyncio.to_thread(stack.stop)
        if not as_json:
            console.print("stopped every process this `up` started")


def _json_event(message: str) -> None:
    print(json.dumps({"event": message}, ensure_ascii=False), file=sys.stderr, flush=True)


def _show(info: StackInfo, stack: Stack) -> None:
    table = Table(title="Định danh — the platform is up", show_header=True)
    table.add_column("what")
    table.add_column("where")
    for name, address in info.services.items():
        table.add_row(f"gRPC {name} (mTLS)", address)
    table.add_row("OpenID Provider (HTTP edge)", info.oidc_issuer)
    table.add_row("demo portal", info.demo_portal)
    table.add_row("second demo portal (SSO)", info.demo_portal_2)
    table.add_row("PostgreSQL", info.postgres_dsn.split("@", 1)[1])
    table.add_row("S3 (SeaweedFS)", info.s3_endpoint)
    table.add_row("operator certificate", f"{info.tls['cert']} (CA {info.tls['ca']})")
    table.add_row("machine-readable", str(stack.info_path))
    console.print(table)
    demo = info.demo_citizen
    console.print(
        f"demo citizen: ID [bold]{demo['id_number']}[/], password [bold]{demo['password']}[/]\n"
        f"current TOTP code: [bold]dinhdanh totp code[/] (secret {demo['totp_secret']})\n"
        f"sign in at {info.demo_portal}, then open {info.demo_portal_2}: single sign-on\n"
        "A process that dies is started again (said here). Ctrl-C stops everything."
    )
