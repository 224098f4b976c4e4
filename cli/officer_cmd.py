"""``dinhdanh officer``: an officer of the Judicial Records Centre at work — the dossiers waiting for a decision
(``VERIFYING``, oldest deadline first), one dossier with its form and history, approve or reject it, and revoke,
suspend or reinstate an issued certificate (Officers of protos/issuance/v1/issuance.proto).

The decisions are the Law on Judicial Records 2009 (as amended by Law 107/2025/QH15): a record that holds
convictions is verified by an officer within the statutory time (Art. 48: 15 working days), a rejection states its
reason to the applicant; the certificate's status is kept in the IETF Token Status List (revoke is final, a
suspension can be lifted).

Acts as the demo officer of ``var/stack.json`` (``clients["officer_demo"]``, an agency registered with the role
``officer``) over mutual TLS with its certificate, unless ``--client-id/--cert/--key`` name another agency. A table
for a person, one JSON object with ``--json``; a refusal is one line with the gRPC status code and exit 1."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.markup import escape
from rich.table import Table

from agency.client import AgencyClient
from cli.agency_cmd import CertOption, KeyOption, _act, _card, _checked, _local
from cli.output import JsonOption, VarOption, console, emit, fail
from protos.issuance.v1 import issuance_pb2 as pb

app = typer.Typer(help="Decide certificate dossiers as an officer of the Judicial Records Centre.",
                  no_args_is_help=True)  # fmt: skip

OFFICER = "officer_demo"  # stack.json clients[...]
PAGE = 100
STATUSES = {
    name.removeprefix("DOSSIER_STATUS_"): number
    for name, number in pb.DossierStatus.items()
    if number != pb.DOSSIER_STATUS_UNSPECIFIED
}
CREDENTIALS = {number: name.removeprefix("CREDENTIAL_STATUS_") for name, number in pb.CredentialStatus.items()}
USAGE_EXIT = 2
ClientIdOption = typer.Option(
    None,
    "--client-id",
    help="Act as an agency with the role officer (default: the demo officer, stack.json clients.officer_demo).",
)
ReasonOption = typer.Option(None, "--reason", help="Why (required; the applicant and the history show it).")


def _time(stamp: Timestamp) -> str:
    return stamp.ToDatetime(dt.UTC).isoformat() if stamp.seconds or stamp.nanos else ""


def status_name(number: int) -> str:
    return pb.DossierStatus.Name(number).removeprefix("DOSSIER_STATUS_") if number in STATUSES.values() else "?"


def describe_dossier(dossier: pb.Dossier) -> dict[str, Any]:
    """The dossier as ``--json`` prints it (the proto's fields, enums by name, instants in ISO UTC)."""
    return {
        "id": dossier.id,
        "tracking_number": dossier.tracking_number,
        "form": dossier.form,
        "purpose": dossier.purpose,
        "status": status_name(dossier.status),
        "requester": dossier.requester,
        "received_at": _time(dossier.received_at),
        "working_days": dossier.working_days,
        "deadline": dossier.deadline,
        "overdue": dossier.overdue,
        "clean_record": dossier.clean_record,
        "rejection_reason": dossier.rejection_reason,
        "fee": {
            "amount_vnd": dossier.fee.amount_vnd,
            "base_vnd": dossier.fee.base_vnd,
            "groups": list(dossier.fee.groups),
            "basis": dossier.fee.basis,
        },
        "certificate_id": dossier.certificate_id,
        "credential_status": CREDENTIALS.get(dossier.credential_status, "UNSPECIFIED"),
        "vault_document_id": dossier.vault_document_id,
        "history": [
            {"status": status_name(c.status), "at": _time(c.at), "actor": c.actor, "reason": c.reason}
            for c in dossier.history
        ],
        "fields": [
            {
                "name": f.name,
                "label_vi": f.label_vi,
                "value": f.value,
                "source": f.source,
                "recorded": f.recorded,
                "asked": f.asked,
            }
            for f in dossier.fields
        ],
    }


def _shown_status(data: dict[str, Any]) -> str:
    credential = data["credential_status"]
    return f"{data['status']} ({credential})" if credential != "UNSPECIFIED" else data["status"]


def _deadline(day: str) -> str:
    try:
        return dt.date.fromisoformat(day).strftime("%d/%m/%Y")
    except ValueError:
        return day or "—"


def _table(title: str, dossiers: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    table.add_column("id", overflow="fold", min_width=8)  # folded, never cut: it is copied into `officer show`
    table.add_column("tracking number", overflow="fold", style="bold")
    table.add_column("form", justify="right", no_wrap=True)
    table.add_column("status", overflow="fold")
    table.add_column("deadline", no_wrap=True, min_width=10)
    table.add_column("overdue", no_wrap=True, min_width=7)
    for d in dossiers:
        overdue = "[red]overdue[/]" if d["overdue"] else ""
        table.add_row(d["id"], escape(d["tracking_number"]), str(d["form"]), _shown_status(d),
                      _deadline(d["deadline"]), overdue)  # fmt: skip
    return table


def _dossier_card(data: dict[str, Any]) -> Table:
    rows = [
        ("id", data["id"]),
        ("status", _shown_status(data)),
        ("form", f"Phiếu lý lịch tư pháp số {data['form']}, purpose {escape(data['purpose'])}"),
        ("requester", escape(data["requester"])),
        ("received", f"{_local(data['received_at'])} (Vietnam time)"),
        (
            "deadline",
            f"{_deadline(data['deadline'])} ({data['working_days']} working days)"
            + (" — overdue" if data["overdue"] else ""),
        ),
        ("record", "clean (nothing the form would print)" if data["clean_record"] else "holds entries to verify"),
        ("fee", f"{data['fee']['amount_vnd']:,} VND".replace(",", ".")),
    ]
    if data["rejection_reason"]:
        rows.append(("rejected because", escape(data["rejection_reason"])))
    if data["certificate_id"]:
        rows.append(("certificate", escape(data["certificate_id"])))
    if data["vault_document_id"]:
        rows.append(("vault document", data["vault_document_id"]))
    return _card(f"Dossier {escape(data['tracking_number'])}", rows)


def _history(data: dict[str, Any]) -> Table:
    table = Table(title="History (oldest first)")
    for column in ("when (Vietnam time)", "status", "by", "reason"):
        table.add_column(column, overflow="fold")
    for change in data["history"]:
        table.add_row(_local(change["at"]), change["status"], escape(change["actor"]), escape(change["reason"]))
    return table


def _fields(data: dict[str, Any]) -> Table:
    table = Table(title="The form as submitted")
    for column in ("field", "value", "source"):
        table.add_column(column, overflow="fold")
    for f in data["fields"]:
        value = f["value"] if f["recorded"] or f["asked"] else "(not recorded)"
        table.add_row(escape(f["label_vi"] or f["name"]), escape(value), escape(f["source"]))
    return table


def _show(data: dict[str, Any], as_json: bool, full: bool = False) -> None:
    def person() -> None:
        console.print(_dossier_card(data))
        console.print(_history(data))
        if full:
            console.print(_fields(data))

    emit(data, as_json, person)


Who = tuple[str | None, Path | None, Path | None]


def _as_officer(var: Path, as_json: bool, who: Who, action: Callable[[AgencyClient], Awaitable[Any]]) -> Any:
    return _act(var, as_json, who, action, demo_key=OFFICER)


def _reason(reason: str | None, what: str, as_json: bool) -> str:
    if reason is None or not reason.strip():
        fail(f"{what} needs its reason: --reason TEXT (the history keeps it)", as_json, USAGE_EXIT)
    assert reason is not None
    return reason.strip()


@app.command("list")
def list_dossiers(
    status: str = typer.Option("VERIFYING", "--status", help=f"One of {', '.join(STATUSES)}."),
    overdue: bool = typer.Option(False, "--overdue", help="Only dossiers past their statutory deadline."),
    limit: int = typer.Option(500, "--limit", min=1, help="At most this many dossiers."),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Dossiers in a status (default VERIFYING: waiting for a decision), oldest deadline first (ListDossiers)."""
    wanted = status.strip().upper().removeprefix("DOSSIER_STATUS_")
    if wanted not in STATUSES:
        fail(f"unknown status {status!r}; one of {', '.join(STATUSES)}", as_json, USAGE_EXIT)

    async def every(agency: AgencyClient) -> list[pb.Dossier]:
        found: list[pb.Dossier] = []
        token = ""
        while len(found) < limit:
            request = pb.ListDossiersRequest(status=STATUSES[wanted], page_size=min(PAGE, limit - len(found)),  # type: ignore[arg-type]
                                             page_token=token, overdue_only=overdue)  # fmt: skip
            page = await agency.call(agency.officers.ListDossiers(request, timeout=20))
            found.extend(page.dossiers)
            token = page.next_page_token
            if not token:
                break
        return found[:limit]

    dossiers = [describe_dossier(d) for d in _as_officer(var, as_json, (client_id, cert, key), every)]
    for d in dossiers:
        d.pop("fields")
    title = f"{len(dossiers)} dossier(s) {wanted}" + (", overdue" if overdue else "")

    def person() -> None:
        console.print(_table(title, dossiers))
        if wanted == "VERIFYING" and dossiers:
            console.print("Decide one: `dinhdanh officer show ID`, then `officer approve ID` or "
                          "`officer reject ID --reason TEXT`.", soft_wrap=True)  # fmt: skip

    emit({"status": wanted, "overdue_only": overdue, "dossiers": dossiers}, as_json, person)


@app.command("show")
def show(
    dossier_id: str = typer.Argument(..., metavar="ID", help="The dossier's id (a UUID, `officer list`)."),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """One dossier: the submitted form with its sources, fee, deadline and history (GetDossier)."""
    key_ = _checked(dossier_id, "the dossier id", as_json)
    request = pb.DossierRequest(id=key_)
    found = _as_officer(var, as_json, (client_id, cert, key),
                        lambda agency: agency.call(agency.officers.GetDossier(request, timeout=20)))  # fmt: skip
    _show(describe_dossier(found), as_json, full=True)


@app.command("approve")
def approve(
    dossier_id: str = typer.Argument(..., metavar="ID", help="The dossier's id (a UUID)."),
    reason: str = typer.Option("", "--reason", help="A note for the history (optional)."),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Approve a VERIFYING dossier (Approve): the issuing worker then issues the certificate (ISSUED)."""
    key_ = _checked(dossier_id, "the dossier id", as_json)
    request = pb.DecisionRequest(id=key_, reason=reason.strip())
    done = _as_officer(var, as_json, (client_id, cert, key),
                       lambda agency: agency.call(agency.officers.Approve(request, timeout=30)))  # fmt: skip
    _show(describe_dossier(done), as_json)


@app.command("reject")
def reject(
    dossier_id: str = typer.Argument(..., metavar="ID", help="The dossier's id (a UUID)."),
    reason: str | None = ReasonOption,
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Reject a VERIFYING dossier with its reason (Reject): the applicant reads it in the portal."""
    text = _reason(reason, "a rejection", as_json)
    key_ = _checked(dossier_id, "the dossier id", as_json)
    request = pb.DecisionRequest(id=key_, reason=text)
    done = _as_officer(var, as_json, (client_id, cert, key),
                       lambda agency: agency.call(agency.officers.Reject(request, timeout=30)))  # fmt: skip
    _show(describe_dossier(done), as_json)


def _status_change(name: str, what: str, help_text: str) -> None:
    def command(
        dossier_id: str = typer.Argument(..., metavar="ID", help="The issued dossier's id (a UUID)."),
        reason: str | None = ReasonOption,
        client_id: str | None = ClientIdOption,
        cert: Path | None = CertOption,
        key: Path | None = KeyOption,
        var: Path = VarOption,
        as_json: bool = JsonOption,
    ) -> None:
        text = _reason(reason, what, as_json)
        key_ = _checked(dossier_id, "the dossier id", as_json)
        request = pb.StatusChangeRequest(id=key_, reason=text)

        def change(agency: AgencyClient) -> Awaitable[pb.Dossier]:
            rpc = getattr(agency.officers, name.capitalize())
            return agency.call(rpc(request, timeout=30))

        _show(describe_dossier(_as_officer(var, as_json, (client_id, cert, key), change)), as_json)

    command.__doc__ = help_text
    app.command(name)(command)


_status_change(
    "revoke",
    "a revocation",
    "Revoke an issued certificate for good (Revoke; its status list entry, IETF Token Status List).",
)
_status_change(
    "suspend",
    "a suspension",
    "Suspend an issued certificate (Suspend): verifiers see it SUSPENDED until it is reinstated.",
)
_status_change("reinstate", "a reinstatement", "Lift a suspension (Reinstate): the certificate is VALID again.")
