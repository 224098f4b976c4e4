"""``dinhdanh verify FILE|QR-TEXT``: check a certificate offline with nothing but the issuer's published keys.

The item is a file (a signed PDF, or a file holding a QR text, an SD-JWT VC or an SD-JWT presentation), ``-``
for standard input, or the QR text / SD-JWT itself on the command line. ``--keys`` is the issuer's JWK Set
(JSON), or the issuer metadata holding it (``/.well-known/jwt-vc-issuer`` saved as is); ``--trust-root`` the CA
certificate(s) a PDF's PAdES signature must chain to (PEM, repeatable); ``--status-list`` a Status List Token
(``statuslist+jwt``, repeatable), without which the line says "status not checked"; ``--audience`` and
``--nonce`` what a presentation's key binding must name (and ``--max-age`` how old it may be: 300 s for a
challenge just sent, longer for a presentation stored for a consent); ``--qr`` the QR text of a PDF that does not
carry it. See ``issuance.verify`` for the checks.

``issuance`` is imported by the command only (a second of pyHanko and SD-JWT for every other command).

Exit codes: 0 valid, 1 invalid, revoked or suspended (the outcome starts the line), 2 unusable input.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from cryptography import x509
from rich.markup import escape
from rich.table import Table

from cli.output import JsonOption, console, emit, fail
from core.errors import InvalidArgument

if TYPE_CHECKING:
    from issuance.verify import Verdict

VALID, REFUSED, UNUSABLE = 0, 1, 2
MAX_FILE = 16 * 1024 * 1024


def _read(path: Path, what: str, as_json: bool) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE:
            fail(f"{what} {path} is larger than {MAX_FILE // (1024 * 1024)} MiB", as_json, UNUSABLE)
        return path.read_bytes()
    except OSError as error:
        fail(f"cannot read {what} {path}: {error.strerror}", as_json, UNUSABLE)
        raise


def _item(argument: str, as_json: bool) -> bytes | str:
    if argument == "-":
        return sys.stdin.buffer.read(MAX_FILE + 1)
    text = argument.strip()
    if text.startswith("VN1:"):
        return text
    path = Path(argument)
    try:
        is_file = path.is_file()
    except OSError:  # a name too long for a file: an SD-JWT on the command line
        is_file = False
    if is_file:
        return _read(path, "the item", as_json)
    if "~" in text and "." in text.split("~", 1)[0]:
        return text  # <JWT>~…: the library says whether it is one
    fail(f"{argument}: neither a file nor a QR text (VN1:…) or an SD-JWT", as_json, UNUSABLE)
    raise AssertionError


def _keys(path: Path | None, as_json: bool) -> dict[str, Any]:
    if path is None:
        fail("--keys is required: the issuer's published keys (a JWK Set, JSON)", as_json, UNUSABLE)
        raise AssertionError
    try:
        jwks = json.loads(_read(path, "the issuer keys", as_json))
    except (ValueError, UnicodeDecodeError):
        fail(f"{path}: the issuer keys are not a JWK Set (JSON)", as_json, UNUSABLE)
    if isinstance(jwks, dict) and "keys" not in jwks and isinstance(jwks.get("jwks"), dict):
        jwks = jwks["jwks"]  # SD-JWT VC issuer metadata (/.well-known/jwt-vc-issuer) as published, its keys inline
    if not isinstance(jwks, dict):
        fail(f"{path}: the issuer keys are not a JWK Set ({{'keys': [...]}})", as_json, UNUSABLE)
    return jwks


def _roots(paths: list[Path], as_json: bool) -> list[x509.Certificate]:
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(x509.load_pem_x509_certificates(_read(path, "the trust root", as_json)))
        except ValueError:
            fail(f"{path}: not a PEM certificate", as_json, UNUSABLE)
    return roots


def _instant(text: str | None, as_json: bool) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at {text}: not an ISO 8601 instant", as_json, UNUSABLE)
        raise
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and not value:
        return "—"
    return json.dumps(value, ensure_ascii=False)


def _print(verdict: Verdict) -> None:
    console.print(f"{verdict.outcome.upper()}: {escape(verdict.reason)}", soft_wrap=True, highlight=False)
    table = Table(show_header=True, header_style="bold")
    table.add_column("Trường")
    table.add_column("Giá trị")
    if verdict.issuer:
        table.add_row("Cơ quan cấp (issuer)", escape(verdict.issuer))
    if verdict.issued_at:
        table.add_row("Thời điểm ký (issued at)", verdict.issued_at.isoformat())
    labels = verdict.labels()
    for name, value in verdict.fields.items():
        table.add_row(escape(labels[name]), escape(_shown(value)))
    table.add_row("Trạng thái (status)", "đã kiểm tra" if verdict.status_checked else "chưa kiểm tra (no status list)")
    console.print(table)


def verify(
    item: str = typer.Argument(..., help="A PDF or a file holding a QR text or an SD-JWT; '-' for stdin; or the text."),
    keys: Path = typer.Option(None, "--keys", help="The issuer's published keys: a JWK Set (JSON file)."),
    trust_root: list[Path] = typer.Option(
        [], "--trust-root", help="A CA certificate (PEM) a PDF signer must chain to."
    ),
    status_list: list[Path] = typer.Option([], "--status-list", help="A Status List Token (statuslist+jwt) file."),
    audience: str = typer.Option(None, "--audience", "--aud", help="The aud a presentation's KB-JWT must name."),
    nonce: str = typer.Option(None, "--nonce", help="The nonce a presentation's key binding must answer."),
    qr: str = typer.Option(None, "--qr", help="The QR text of a PDF that does not carry it."),
    at: str = typer.Option(None, "--at", help="Verify as at this ISO 8601 instant (default: now)."),
    max_age: int = typer.Option(
        300,
        "--max-age",
        min=1,
        help="How old a presentation's key binding may be, in seconds (a stored one: its consent's validity).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Verify a certificate offline (a QR text, an SD-JWT VC or presentation, a signed PDF): valid, invalid,
    revoked or suspended, and the disclosed fields."""
    from issuance.verify import Outcome, verify_presented  # 1 s of pyHanko and SD-JWT: only for this command

    jwks = _keys(keys, as_json)
    presented = _item(item, as_json)
    roots = _roots(trust_root, as_json)
    tokens = [_read(path, "the status list", as_json).decode("utf-8", errors="replace").strip() for path in status_list]
    try:
        verdict = verify_presented(
            presented,
            issuer_jwks=jwks,
            trust_roots=roots,
            status_lists=tokens,
            at=_instant(at, as_json),
            audience=audience,
            nonce=nonce,
            qr=qr,
            max_age=timedelta(seconds=max_age),
        )
    except InvalidArgument as error:
        fail(error.message, as_json, UNUSABLE)
        raise
    emit(verdict.to_json(), as_json, lambda: _print(verdict))
    if verdict.outcome is not Outcome.VALID:
        raise typer.Exit(REFUSED)
