"""``dinhdanh bench NAME``: measure a running stack; ``--json`` prints one JSON object."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import typer
from rich.table import Table

from cli.output import JsonOption, VarOption, console, emit, run, stack_info

app = typer.Typer(help="Benchmarks against a running stack (`make up` first).", no_args_is_help=True)


def _bench(name: str) -> ModuleType:
    """``bench.<name>``, imported by its command only: the benches bring minio, httpx and pyHanko, a second of
    imports no other ``dinhdanh`` command should pay."""
    return importlib.import_module(f"bench.{name}")


@app.command("auth")
def bench_auth(
    seconds: float = typer.Option(20.0, "--seconds", min=1.0, help="How long to load the service."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Sign-ins in flight."),
    raw_seconds: float = typer.Option(5.0, "--raw-seconds", min=1.0, help="How long to measure raw Argon2id."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Password + TOTP sign-ins per second through identity (mTLS) beside raw Argon2id verifications."""
    info = stack_info(var, as_json)
    result = run(lambda: _bench("auth").run(info, var / "secrets", seconds, concurrency, raw_seconds), as_json)
    emit(result, as_json, lambda: _table("bench auth: password + TOTP through identity over mTLS", result))


@app.command("sso")
def bench_sso(
    seconds: float = typer.Option(10.0, "--seconds", min=1.0, help="How long each phase runs."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Sign-ins in flight."),
    raw_seconds: float = typer.Option(5.0, "--raw-seconds", min=1.0, help="How long to measure raw Argon2id."),
    profile: str = typer.Option("plain", "--profile", help="plain, or fapi2: FAPI 2.0 (PAR, private_key_jwt, DPoP) "
                                "beside the plain profile in the same run, with the ratios."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Browserless sign-ins, client_credentials, refresh, discovery and JWKS through the edge."""
    if profile not in ("plain", "fapi2"):
        raise typer.BadParameter("the profile is plain or fapi2", param_hint="--profile")
    info = stack_info(var, as_json)
    result = run(lambda: _bench("sso").run(info, var, seconds, concurrency, raw_seconds, profile), as_json)
    title = "bench sso: the OpenID Provider (edge) on this machine, load generator included"
    emit(result, as_json, lambda: _table(title, result))


def _table(title: str, result: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value))
    console.print(table)


@app.command("vault")
def bench_vault(
    seconds: float = typer.Option(10.0, "--seconds", min=1.0, help="How long each phase runs."),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=4, help="Uploads or downloads in flight (one citizen may hold 4 uploads open)."
    ),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Document upload and download through the vault (100 KiB, 5 MiB) beside raw S3 PUT/GET."""
    info = stack_info(var, as_json)
    result = run(lambda: _bench("vault").run(info, var, seconds, concurrency), as_json)
    title = "bench vault: documents through the vault (mTLS, token, encryption) beside raw S3, same machine"
    emit(result, as_json, lambda: _table(title, result))


@app.command("audit")
def bench_audit(
    seconds: float = typer.Option(10.0, "--seconds", min=1.0, help="How long each phase runs."),
    writers: int = typer.Option(8, "--writers", min=1, help="Appending tasks (each 50 events in flight)."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Inclusion-proof calls in flight."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Transparency-log appends per second (checkpoint every second) and inclusion proofs per second."""
    info = stack_info(var, as_json)
    result = run(lambda: _bench("audit").run(info, seconds, writers, concurrency), as_json)
    emit(result, as_json, lambda: _table("bench audit: audit.events → sequencer → tiles → checkpoints; proofs", result))


@app.command("consent")
def bench_consent(
    seconds: float = typer.Option(10.0, "--seconds", min=1.0, help="How long each phase runs."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Fetches or downloads in flight."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """An agency's DownloadShared of a 100 KiB document (mTLS, bound token, consent check and counter update,
    decryption, audit row) beside the citizen's own Download of it, same run."""
    info = stack_info(var, as_json)
    result = run(lambda: _bench("consent").run(info, var, seconds, concurrency), as_json)
    title = "bench consent: agency fetches under consent beside the citizen's own download, same machine"
    emit(result, as_json, lambda: _table(title, result))


@app.command("issuance")
def bench_issuance(
    seconds: float = typer.Option(20.0, "--seconds", min=1.0, help="How long applicants keep applying."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Dossiers in flight (one per applicant)."),
    qr_seconds: float = typer.Option(3.0, "--qr-seconds", min=0.5, help="How long each QR verification runs."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Criminal-record dossiers end to end (Apply → auto-approval → SD-JWT VC + PDF + PAdES + QR → in the vault)
    per second with p50/p99, and offline QR verifications per second in-process."""
    info = stack_info(var, as_json)
    result = run(lambda: _bench("issuance").run(info, var, seconds, concurrency, qr_seconds), as_json)
    title = "bench issuance: dossiers end to end on this machine, load generator included; offline QR in-process"
    emit(result, as_json, lambda: _table(title, result))
