"""``dinhdanh``: the operator's command line."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import (
    accounts,
    agency_cmd,
    audit_cmd,
    bench_cmd,
    capacity_cmd,
    clients,
    facility_cmd,
    keys_cmd,
    loadtest_cmd,
    officer_cmd,
    registry_cmd,
    vault_cmd,
    verify_cmd,
)
from cli.output import JsonErrors, JsonOption, VarOption, emit, stack_info
from cli.up import up
from core import logs
from identity import totp as totp_codes

app = typer.Typer(
    cls=JsonErrors,
    help="Định danh: national e-identity and citizen data vault (operator CLI).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _logs() -> None:
    """Domain code logs as in a service, as JSON lines on stderr (stdout is the command's output)."""
    logs.configure("cli", "warning")


app.command()(up)
app.command("verify")(verify_cmd.verify)
app.command("capacity")(capacity_cmd.capacity)
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(accounts.app, name="accounts")
app.add_typer(clients.app, name="clients")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(vault_cmd.app, name="vault")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(agency_cmd.app, name="agency")
app.add_typer(officer_cmd.app, name="officer")
app.add_typer(facility_cmd.app, name="facility")
app.add_typer(loadtest_cmd.app, name="loadtest")

totp_app = typer.Typer(help="TOTP helpers for demos and tests.", no_args_is_help=True)
app.add_typer(totp_app, name="totp")


@totp_app.command("code")
def totp_code(
    secret: str = typer.Option("", help="Base32 secret (default: the demo citizen's)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """The current 6-digit code, as an authenticator app would show it."""
    if not secret:
        secret = stack_info(var, as_json).demo_citizen["totp_secret"]
    code = totp_codes.code_at(secret)
    emit({"code": code}, as_json, lambda: print(code))


if __name__ == "__main__":
    app()
