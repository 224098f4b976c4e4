"""``dinhdanh agency``: play the agency from the command line — ask a citizen for consent, follow its signed
status, get a certificate-bound consent token, list and fetch what the citizen shared (``agency/client.py``).

Acts as the demo agency of ``var/stack.json`` (``clients["agency_demo"]``) unless ``--client-id/--cert/--key``
name another one. Every command answers a person with tables and plain words, or a script with one JSON object
(``--json``); a refusal is one line (the gRPC status, the OAuth error, the consent's denial reason code) and a
non-zero exit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.markup import escape
from rich.table import Table

from agency.client import (
    DEMO,
    SD_JWT,
    STATUSES,
    AgencyClient,
    AgencyError,
    SignedStatus,
    check_uuid,
    type_name,
    verify_shared,
)
from cli.output import JsonOption, VarOption, console, emit, err, stack_info
from protos.consent.v1 import consent_pb2 as cpb
from protos.vault.v1 import vault_pb2 as vpb

app = typer.Typer(
    help="Play an agency: ask citizens for consent, get consent tokens, fetch shared documents.", no_args_is_help=True
)
T = TypeVar("T")

ClientIdOption = typer.Option(None, "--client-id", help="Act as this agency (default: the demo agency).")
CertOption = typer.Option(None, "--cert", help="The agency's client certificate (PEM; with --client-id).")
KeyOption = typer.Option(None, "--key", help="The agency's private key (PEM; with --client-id).")
REFUSED_EXIT = 1


def _refused(error: AgencyError, as_json: bool) -> None:
    if as_json:
        data = {"error": error.message, "code": error.code} | ({"reason": error.reason} if error.reason else {})
        print(json.dumps(data, ensure_ascii=False))
    else:
        err.print(f"[red]error:[/] {escape(error.message)}", soft_wrap=True)
    raise typer.Exit(REFUSED_EXIT)


def _act(
    var: Path,
    as_json: bool,
    who: tuple[str | None, Path | None, Path | None],
    action: Callable[[AgencyClient], Awaitable[T]],
    demo_key: str = DEMO,
) -> T:
    """Run ``action`` as the chosen agency (by default the demo agency ``clients[demo_key]`` of stack.json); every
    failure is one line (``AgencyError``)."""
    info = stack_info(var, as_json)

    async def go() -> T:
        async with AgencyClient.from_stack(info, *who, demo_key=demo_key) as agency:
            return await action(agency)

    try:
        return asyncio.run(go())
    except AgencyError as error:
        _refused(error, as_json)
        raise


def _checked(value: str, what: str, as_json: bool) -> str:
    try:
        return check_uuid(value, what)
    except AgencyError as error:
        _refused(error, as_json)
        raise


def _time(stamp: Timestamp) -> str:
    return stamp.ToDatetime(dt.UTC).isoformat() if stamp.seconds or stamp.nanos else ""


def _local(text: str) -> str:
    """ISO UTC → ``01/12/2026 19:05`` Vietnam time (UTC+7), for people."""
    if not text:
        return "—"
    return dt.datetime.fromisoformat(text).astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%d/%m/%Y %H:%M")


def describe_consent(record: cpb.ConsentRecord) -> dict[str, Any]:
    terms = record.terms
    per_day = terms.frequency.count if terms.frequency.unit == cpb.FREQUENCY_UNIT_DAY else 0
    return {
        "id": record.id,
        "client_id": record.client_id,
        "agency_name": record.agency_name,
        "status": STATUSES.get(record.status, "UNSPECIFIED"),
        "purpose": terms.purpose,
        "purpose_text": record.purpose_text,
        "purpose_text_en": record.purpose_text_en,
        "document_ids": list(terms.document_ids),
        "document_types": [type_name(t) for t in terms.document_types],
        "start": _time(terms.start),
        "expiry": _time(terms.expiry),
        "data_life_days": terms.data_life_seconds // 86400,
        "max_fetches": terms.max_fetches,
        "per_day": per_day,
        "frequency": {"count": terms.frequency.count, "unit": cpb.FrequencyUnit.Name(terms.frequency.unit)},
        "fetches": record.fetches,
        "created_at": _time(record.created_at),
        "artefact_jws": record.artefact_jws,
    }


def describe_document(document: vpb.Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "type": type_name(document.document_type),
        "title": document.title,
        "filename": document.filename,
        "content_type": document.content_type,
        "size_bytes": document.size_bytes,
        "sha256": document.sha256.hex(),
        "version": document.version,
        "source": vpb.DocumentSource.Name(document.source).removeprefix("DOCUMENT_SOURCE_"),
        "issuer_name": document.issuer_name,
        "created_at": _time(document.created_at),
    }


def _card(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    return table


def _consent_card(data: dict[str, Any]) -> Table:
    covers = [*(f"type {t}" for t in data["document_types"]), *(f"document {d}" for d in data["document_ids"])]
    return _card(
        f"Consent {data['id']}",
        [
            ("status", data["status"]),
            ("agency", escape(f"{data['agency_name']} ({data['client_id']})")),
            ("purpose", escape(f"{data['purpose']}: {data['purpose_text']}")),
            ("covers", escape("\n".join(covers))),
            ("window", f"{_local(data['start'])} → {_local(data['expiry'])} (Vietnam time)"),
            ("limits", f"{data['max_fetches']} fetches in all, at most {data['per_day']} a day"),
            ("data life", f"{data['data_life_days']} days after each fetch"),
            ("fetches made", str(data["fetches"])),
        ],
    )


def _status_data(signed: SignedStatus) -> dict[str, Any]:
    return {"consent_id": signed.consent_id, "status": signed.status, "fetches": signed.fetches, "verified": True,
            "kid": signed.kid, "claims": signed.claims, "jws": signed.jws}  # fmt: skip


@app.command("purposes")
def purposes(
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """The purpose catalog (ListPurposes): code, Vietnamese and English text, legal basis."""
    found = _act(var, as_json, (client_id, cert, key), lambda agency: agency.purposes())
    data = [{"code": p.code, "text_vi": p.text_vi, "text_en": p.text_en, "legal_basis": p.legal_basis} for p in found]

    def person() -> None:
        table = Table(title=f"{len(data)} purposes an agency may ask for", show_lines=True)
        table.add_column("code", no_wrap=True, style="bold")
        for column in ("Tiếng Việt", "English", "legal basis"):
            table.add_column(column, overflow="fold")
        for p in data:
            table.add_row(escape(p["code"]), escape(p["text_vi"]), escape(p["text_en"]), escape(p["legal_basis"]))
        console.print(table)

    emit({"purposes": data}, as_json, person)


@app.command("request")
def request(
    id_number: str = typer.Argument(..., help="The citizen's 12-digit ID number."),
    purpose: str = typer.Option(..., "--purpose", help="A purpose code (`dinhdanh agency purposes`)."),
    document_type: list[str] = typer.Option([], "--type", help="A document type, e.g. DIPLOMA (repeatable)."),
    document: list[str] = typer.Option([], "--document", help="A vault document id (repeatable)."),
    days: int = typer.Option(30, "--days", help="How long the consent lasts, from now."),
    max_fetches: int = typer.Option(10, "--max-fetches", help="Fetches in all."),
    per_day: int = typer.Option(3, "--per-day", help="Fetches a calendar day (Vietnam time)."),
    data_life_days: int = typer.Option(30, "--data-life-days", help="How long the agency may keep what it fetched."),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Ask a citizen for consent (RequestConsent): PENDING until they approve or reject it in the portal."""
    record = _act(var, as_json, (client_id, cert, key),
                  lambda agency: agency.request_consent(id_number, purpose, document_type, document, days, max_fetches,
                                                        per_day, data_life_days))  # fmt: skip
    data = describe_consent(record)

    def person() -> None:
        console.print(_consent_card(data))
        console.print("The citizen approves or rejects it in the demo portal (/consents); then "
                      f"`dinhdanh agency documents {data['id']}`.", soft_wrap=True)  # fmt: skip

    emit(data, as_json, person)


@app.command("status")
def status(
    consent_id: str,
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """The consent's signed status (GetConsentStatus), its JWS verified against the platform's consent keys."""
    consent_id = _checked(consent_id, "the consent id", as_json)
    signed = _act(var, as_json, (client_id, cert, key), lambda agency: agency.status(consent_id))
    data = _status_data(signed)

    def person() -> None:
        issued = dt.datetime.fromtimestamp(int(signed.claims.get("iat", 0)), dt.UTC).isoformat()
        console.print(_card(f"Consent {consent_id}", [
            ("status", signed.status),
            ("fetches made", str(signed.fetches)),
            ("signature", f"verified (ES256, key {escape(signed.kid)}, GetSigningKeys)"),
            ("signed at", _local(issued)),
            ("artefact SHA-256", escape(str(signed.claims.get("artefact_sha256", "")))),
        ]))  # fmt: skip
        console.print("Keep the JWS as evidence: `--json` prints it.")

    emit(data, as_json, person)


@app.command("token")
def token(
    consent_id: str,
    raw: bool = typer.Option(False, "--raw", help="Print the token itself (a bearer credential: keep it secret)."),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """A consent token for this consent (client_credentials + authorization_details at the edge's mTLS token
    endpoint, tls_client_auth): its decoded claims; the token itself only with --raw."""
    consent_id = _checked(consent_id, "the consent id", as_json)
    got = _act(var, as_json, (client_id, cert, key), lambda agency: agency.token(consent_id))
    claims = got.claims
    data: dict[str, Any] = {"claims": claims, "expires_in": got.expires_in,
                            "authorization_details": got.authorization_details}  # fmt: skip
    if raw:
        data["access_token"] = got.access_token
        emit(data, as_json, lambda: print(got.access_token))
        return
    emit(data, as_json, lambda: console.print_json(json.dumps(claims, ensure_ascii=False)))


@app.command("documents")
def documents(
    consent_id: str,
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """What the consent covers (a consent token, then ListSharedDocuments)."""
    consent_id = _checked(consent_id, "the consent id", as_json)

    async def go(agency: AgencyClient) -> list[vpb.Document]:
        return await agency.list_shared((await agency.token(consent_id)).access_token)

    found = [describe_document(d) for d in _act(var, as_json, (client_id, cert, key), go)]

    def person() -> None:
        table = Table(title=f"{len(found)} shared document{'s' if len(found) != 1 else ''} under consent {consent_id}")
        table.add_column("document id", no_wrap=True)
        for column in ("type", "title", "file", "size", "version"):
            table.add_column(column, overflow="fold")
        for d in found:
            table.add_row(d["id"], d["type"], escape(d["title"]), escape(f"{d['filename']} ({d['content_type']})"),
                          f"{d['size_bytes']:,} B", str(d["version"]))  # fmt: skip
        console.print(table)

    emit({"consent_id": consent_id, "documents": found}, as_json, person)


@app.command("fetch")
def fetch(
    consent_id: str,
    document_id: str,
    out: Path = typer.Option(..., "--out", help="Where to write the document (created, mode 0600)."),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Verify a shared certificate presentation (application/dc+sd-jwt)."
    ),
    keys: Path | None = typer.Option(
        None, "--keys", help="The issuer's keys (a JWK Set file) instead of the platform's published ones."
    ),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Download one shared document under the consent (a consent token, then DownloadShared): counted against
    the consent; a refusal prints the rule that refused (its reason code) and exits non-zero. A certificate the
    citizen shared selectively (an SD-JWT presentation) is verified too: the issuer's signature with the
    platform's published keys (``/.well-known/jwt-vc-issuer``; ``--keys`` another JWK Set), its status, and the
    key binding to this agency (``aud``) and this consent (``nonce``); not VALID exits non-zero (the file is
    written anyway)."""
    consent_id = _checked(consent_id, "the consent id", as_json)
    document_id = _checked(document_id, "the document id", as_json)
    issuer_jwks = _issuer_keys(keys, as_json) if keys is not None else None

    async def go(agency: AgencyClient) -> tuple[vpb.Document, Any]:
        shared = await agency.download_shared((await agency.token(consent_id)).access_token, document_id)
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(shared.content)
        except OSError as error:
            raise AgencyError(f"cannot write {out}: {error.strerror}", "io") from None
        verdict = None
        if verify and shared.metadata.content_type == SD_JWT:
            verdict = await verify_shared(agency, shared.content, consent_id, issuer_jwks)
        return shared.metadata, verdict

    metadata, verdict = _act(var, as_json, (client_id, cert, key), go)
    data = describe_document(metadata) | {"out": str(out)}
    human = f"wrote {out}: {data['title']} ({data['type']}, {data['size_bytes']:,} bytes, SHA-256 {data['sha256']})"
    if verdict is not None:
        data["verification"] = verdict.to_json()
        labels = verdict.labels()
        shown = "; ".join(f"{labels[name]}: {value}" for name, value in verdict.fields.items())
        human += f"\n{verdict.outcome.upper()}: {verdict.reason}\n{shown}"
    emit(data, as_json, lambda: console.print(escape(human), soft_wrap=True))
    if verdict is not None and str(verdict.outcome) != "valid":
        raise typer.Exit(REFUSED_EXIT)


def _issuer_keys(path: Path, as_json: bool) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        _refused(AgencyError(f"cannot read the issuer keys {path}: {error}", "io"), as_json)
        raise
    if not isinstance(value, dict):
        _refused(AgencyError(f"{path}: the issuer keys are not a JWK Set", "io"), as_json)
    return value


@app.command("notify")
def notify(
    url: str = typer.Argument(..., help='Where status changes are posted (https; "" removes it).'),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Register the URL the platform posts this agency's consent status changes to (signed SETs, RFC 8417)."""
    registered = _act(var, as_json, (client_id, cert, key), lambda agency: agency.set_notification_url(url))
    emit({"url": registered}, as_json, lambda: console.print(f"notification URL: {escape(registered) or 'none'}"))
