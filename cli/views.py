"""What the CLI shows a person (``--json`` shows scripts the same facts as one object): tables and plain words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

from core.callers import SERVICE_AUDIENCE_PREFIX

SEX = {"SEX_MALE": "Nam (male)", "SEX_FEMALE": "Nữ (female)"}
KIND = {"portal": "portal (signs citizens in)", "agency": "agency (acts on its own)"}


def _words(values: Iterable[str]) -> str:
    return ", ".join(escape(v) for v in values) or "—"


def _service(resource: str) -> str:
    """``urn:dinhdanh:service:vault`` → ``vault``."""
    return resource.removeprefix(SERVICE_AUDIENCE_PREFIX)


def _may_ask_for(client: Mapping[str, Any]) -> str:
    lines = [f"scopes: {_words(client.get('scopes', ()))}"]
    if client.get("resources"):
        lines.append(f"services: {_words(_service(r) for r in client['resources'])}")
    return "\n".join(lines)


def _where(client: Mapping[str, Any]) -> str:
    if client.get("kind") == "agency":
        roles = f"\nroles: {_words(client['roles'])}" if client.get("roles") else ""
        return f"purposes: {_words(client.get('purposes', ()))}{roles}"
    return "\n".join(escape(uri) for uri in client.get("redirect_uris", ())) or "—"


def _status(client: Mapping[str, Any]) -> str:
    words = ["disabled" if client.get("disabled") else "active"]
    if (client.get("min_acr") or 1) > 1:
        words.append(f"sign-in at level {client['min_acr']} only")
    if client.get("migrate"):  # an agency still plain with a secret (docs/fapi.md, Agencies)
        words.append(f"[bold red]to move to FAPI 2.0[/]: {escape(str(client['migrate']))}")
    return ", ".join(words)


def clients_table(clients: list[Mapping[str, Any]]) -> Table:
    """``dinhdanh clients list``: one row a client."""
    table = Table(title=f"{len(clients)} registered client{'s' if len(clients) != 1 else ''}", show_lines=True)
    for column in ("name", "client id", "kind", "may ask for", "redirect URIs / purposes", "status"):
        table.add_column(column, overflow="fold")
    for client in clients:
        table.add_row(
            escape(client.get("name", "")),
            escape(client.get("client_id", "")),
            KIND.get(client.get("kind", ""), escape(client.get("kind", ""))),
            _may_ask_for(client),
            _where(client),
            _status(client),
        )
    return table


def client_card(client: Mapping[str, Any], title: str) -> Table:
    """One client, field by field (``clients add-portal``, ``add-agency``)."""
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("name", escape(client.get("name", "")))
    table.add_row("client id", escape(client.get("client_id", "")))
    table.add_row("kind", KIND.get(client.get("kind", ""), escape(client.get("kind", ""))))
    table.add_row("may ask for", _may_ask_for(client))
    if client.get("kind") == "agency":
        table.add_row("purposes", _words(client.get("purposes", ())))
        if client.get("roles"):
            table.add_row("roles", _words(client["roles"]))
        if client.get("signing_keys"):
            table.add_row("document signing keys", _words(k or "?" for k in client["signing_keys"]))
    else:
        table.add_row("redirect URIs", _where(client))
        if client.get("post_logout_redirect_uris"):
            table.add_row("after logout", "\n".join(escape(u) for u in client["post_logout_redirect_uris"]))
        table.add_row("ID token signature", escape(client.get("id_token_alg", "")))
    table.add_row("status", _status(client))
    return table


def _date(value: str) -> str:
    """ISO ``1990-03-15`` → ``15/03/1990`` (the Vietnamese order), anything else as it is."""
    try:
        return dt.date.fromisoformat(value).strftime("%d/%m/%Y")
    except ValueError:
        return value


def _address(address: Mapping[str, str] | None) -> str:
    parts = [address.get(key, "") for key in ("street", "commune", "province")] if address else []
    return ", ".join(escape(p) for p in parts if p) or "—"


CITIZEN_ROWS = (
    ("Số định danh cá nhân (ID number)", lambda c: escape(c.get("id_number", ""))),
    ("Họ và tên (full name)", lambda c: escape(c.get("full_name", ""))),
    ("Ngày sinh (date of birth)", lambda c: _date(c.get("date_of_birth", ""))),
    ("Giới tính (sex)", lambda c: SEX.get(c.get("sex", ""), "—")),
    ("Quốc tịch (nationality)", lambda c: escape(c.get("nationality", ""))),
    ("Dân tộc (ethnicity)", lambda c: escape(c.get("ethnicity", ""))),
    ("Tôn giáo (religion)", lambda c: escape(c.get("religion", ""))),
    ("Quê quán (hometown)", lambda c: escape(c.get("hometown", ""))),
    ("Nơi thường trú (permanent address)", lambda c: _address(c.get("permanent_address"))),
    ("Nơi ở hiện tại (current address)", lambda c: _address(c.get("current_address"))),
    ("Ngày cấp CCCD (ID card issued on)", lambda c: _date(c.get("id_card_issue_date", ""))),
    ("Nơi cấp (issued by)", lambda c: escape(c.get("id_card_issue_place", ""))),
    ("Số điện thoại (phone)", lambda c: escape(c.get("phone", ""))),
)


def citizen_card(citizen: Mapping[str, Any]) -> Table:
    """``dinhdanh registry lookup``: the record in plain words."""
    table = Table(title="Cơ sở dữ liệu quốc gia về dân cư (population registry)", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in CITIZEN_ROWS:
        table.add_row(label, value(citizen) or "—")
    return table
