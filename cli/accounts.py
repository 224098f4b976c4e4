"""``dinhdanh accounts``: look up, provision, verify in person, unlock."""

from __future__ import annotations

import secrets
from pathlib import Path

import typer
from google.protobuf.json_format import MessageToDict

from cli.output import JsonOption, VarOption, emit, run, stack_info
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
from stack.provision import activate_with_totp

app = typer.Typer(help="Citizen accounts.", no_args_is_help=True)


def _account(message: pb.Account) -> dict[str, object]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


@app.command()
def show(id_number: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """An account's state: assurance level, TOTP, lock."""
    info = stack_info(var, as_json)

    async def go() -> dict[str, object]:
        async with info.channel("identity") as channel:
            return _account(
                await pb_grpc.IdentityStub(channel).GetAccount(pb.GetAccountRequest(id_number=id_number), timeout=10)
            )

    emit(run(go, as_json), as_json)


@app.command("activate-test")
def activate_test(
    id_number: str,
    password: str = typer.Option("", help="Password to set (default: a random one, printed)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Activate a test account for a citizen on record, enroll TOTP, print the password and TOTP secret."""
    info = stack_info(var, as_json)
    chosen = password or "Test-" + secrets.token_urlsafe(12)

    async def go() -> dict[str, object]:
        async with info.channel("registry") as registry, info.channel("identity") as identity:
            secret = await activate_with_totp(registry, identity, id_number, chosen)
        return {"id_number": id_number, "password": chosen, "totp_secret": secret}

    emit(run(go, as_json), as_json)


@app.command("verify-in-person")
def verify_in_person(
    id_number: str,
    note: str = typer.Option(..., help="Where and how the citizen was verified (e.g. the office)."),
    document: str = typer.Option("idcard", help="The document checked: idcard (the chip CCCD) or passport."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Mark an account assurance level 2: an operator verified the citizen in person. The evidence is recorded
    (you, the place, the document with its registry particulars, the time) and returned to portals that ask for
    verified_claims (docs/verified-claims.md)."""
    info = stack_info(var, as_json)

    async def go() -> dict[str, object]:
        async with info.channel("identity") as channel:
            request = pb.SetAssuranceLevelRequest(id_number=id_number, level=2, note=note, document_type=document)
            return _account(await pb_grpc.IdentityStub(channel).SetAssuranceLevel(request, timeout=10))

    emit(run(go, as_json), as_json)


@app.command()
def unlock(id_number: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """Clear an account's failure counters (after the citizen proved who they are)."""
    info = stack_info(var, as_json)

    async def go() -> dict[str, object]:
        async with info.channel("identity") as channel:
            request = pb.UnlockAccountRequest(id_number=id_number)
            return _account(await pb_grpc.IdentityStub(channel).UnlockAccount(request, timeout=10))

    emit(run(go, as_json), as_json)


@app.command("unlock-password")
def unlock_password(
    id_number: str,
    note: str = typer.Option("", help="How the citizen proved who they are (e.g. at which office)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Lift a citizen's lock of password sign-in (issue 13 §5): a level-2 account only (verified in person)."""
    from protos.identity.v1 import security_pb2, security_pb2_grpc

    info = stack_info(var, as_json)

    async def go() -> dict[str, object]:
        async with info.channel("identity") as channel:
            request = security_pb2.OperatorUnlockPasswordRequest(id_number=id_number, note=note)
            reply = await security_pb2_grpc.AccountSecurityStub(channel).OperatorUnlockPassword(request, timeout=10)
            return _account(reply)  # type: ignore[arg-type]

    emit(run(go, as_json), as_json)
