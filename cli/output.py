"""One way to answer: a JSON object for scripts (``--json``), or readable lines for a person."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import typer
from rich.console import Console
from rich.markup import escape

from stack.info import StackInfo
from stack.postgres import StackError

console = Console()
err = Console(stderr=True)

VarOption = typer.Option(Path("var"), "--var", help="The stack's folder (holds stack.json).")
JsonOption = typer.Option(False, "--json", help="Print one JSON object.")


def emit(data: dict[str, Any], as_json: bool, human: Callable[[], None] | None = None) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, default=str))
    elif human:
        human()
    else:
        for key, value in data.items():
            console.print(f"[bold]{key}[/]: {value}")


def fail(message: str, as_json: bool, code: int = 1) -> None:
    if as_json:
        print(json.dumps({"error": message}, ensure_ascii=False))
    else:
        err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)  # a command in it stays on one line
    raise typer.Exit(code)


def stack_info(var: Path, as_json: bool) -> StackInfo:
    try:
        return StackInfo.load(var / "stack.json")
    except FileNotFoundError as error:
        fail(str(error), as_json)
        raise


def run(coro: Callable[[], Coroutine[Any, Any, Any]], as_json: bool) -> Any:
    """Run an async command; RPC and stack errors become one clear line, not a traceback."""
    try:
        return asyncio.run(coro())
    except grpc.aio.AioRpcError as error:
        fail(f"{error.code().name}: {error.details()}", as_json)
    except StackError as error:
        fail(str(error), as_json)
    except (OSError, asyncpg.PostgresError) as error:
        fail(f"cannot reach the platform ({type(error).__name__}): is `make up` running?", as_json)
