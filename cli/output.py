"""One way to answer: a JSON object for scripts (``--json``), or readable lines for a person."""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

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


class JsonErrors(TyperGroup):
    """The CLI's top-level group: with ``--json`` on the command line, a usage error (an unknown option, a value
    out of range) or an unexpected crash is one JSON object ``{"error": ...}`` on stdout too, as every ``--json``
    command promises; without it, click's and typer's own messages."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv or not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            print(json.dumps({"error": "aborted"}))
            sys.exit(1)
        except typer.TyperException as error:  # click's usage errors (typer's own copy of click)
            message = error.format_message() if hasattr(error, "format_message") else str(error)
            print(json.dumps({"error": message}, ensure_ascii=False))
            sys.exit(getattr(error, "exit_code", 2))
        except Exception as error:
            traceback.print_exc()  # for a person, on stderr; stdout stays one JSON object
            print(json.dumps({"error": f"unexpected error ({type(error).__name__}); the details are on stderr"}))
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
