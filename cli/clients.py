"""``dinhdanh clients``: register portals and agencies, list, rotate secrets, disable."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import typer

from cli import views
from cli.output import JsonOption, VarOption, console, emit, fail, run, stack_info
from core.errors import DomainError, InvalidArgument
from identity.oidc import registration
from identity.oidc.clients import Client, new_secret
from identity.oidc.store import ClientStore
from stack.pki import PlatformCA
from vault.signatures import check_public_jwks

app = typer.Typer(help="OAuth clients: government portals and agencies.", no_args_is_help=True)
T = TypeVar("T")


def _with_store(var: Path, as_json: bool, action: Callable[[ClientStore], Awaitable[T]]) -> T:
    info = stack_info(var, as_json)

    async def go() -> T:
        pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
        try:
            return await action(ClientStore(pool))
        finally:
            await pool.close()

    return run(go, as_json)  # type: ignore[no-any-return]


def describe(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "kind": client.kind,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
        "resources": list(client.resources),
        "min_acr": client.min_acr,
        "purposes": list(client.purposes),
        "id_token_alg": client.id_token_alg,
        "signing_keys": [key.get("kid") for key in (client.jwks or {}).get("keys", [])],
        "disabled": client.disabled,
        "tls_client_auth_san_uri": client.tls_client_auth_san_uri,
        "cert_sha256": client.cert_sha256,
        "roles": list(client.roles),
    }


@app.command("add-portal")
def add_portal(
    name: str = typer.Option(..., "--name"),
    redirect_uri: list[str] = typer.Option(..., "--redirect-uri", help="Exact redirect URI (repeatable)."),
    post_logout_uri: list[str] = typer.Option([], "--post-logout-uri", help="Where logout may return (repeatable)."),
    id_token_alg: str = typer.Option("RS256", "--id-token-alg", help="RS256 (default) or ES256."),
    refresh: bool = typer.Option(False, "--refresh", help="Refresh tokens without offline_access (client policy)."),
    scope: list[str] = typer.Option(
        [], "--scope", help="A scope beyond openid and profile, e.g. national_id, vault.read (repeatable)."
    ),
    resource: list[str] = typer.Option(
        [],
        "--resource",
        help="A resource it may ask for, e.g. urn:dinhdanh:service:vault (repeatable; none by default).",
    ),
    min_acr: int = typer.Option(1, "--min-acr", help="Assurance level every sign-in needs: 1, or 2 (in person)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Register a confidential portal; prints client_id and client_secret (shown once). It may ask for openid and
    profile only, plus each --scope and --resource given."""
    try:
        client, secret = registration.portal(name, redirect_uri, post_logout_uri, id_token_alg, refresh, scope,
                                             resource, min_acr)  # fmt: skip
    except InvalidArgument as error:
        fail(error.message, as_json)
        raise
    _with_store(var, as_json, lambda store: store.add(client))
    _show_registered(client, secret, "portal", as_json)


@app.command("add-agency")
def add_agency(
    name: str = typer.Option(..., "--name"),
    purpose: list[str] = typer.Option(..., "--purpose", help="An allowed purpose (repeatable)."),
    scope: list[str] = typer.Option([], "--scope", help="Scopes (default: all agency scopes)."),
    resource: list[str] = typer.Option(
        [], "--resource", help="A resource it may ask for (repeatable; default: the services its scopes name)."
    ),
    jwks: Path | None = typer.Option(None, "--jwks", help="The agency's public signing keys (JWKS JSON file)."),
    role: list[str] = typer.Option(
        [], "--role", help="facility, officer, procedural_authority or authorised_by_law (repeatable; none by default)."
    ),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Register an agency (client_credentials); prints client_id and client_secret (shown once). With --jwks,
    the public keys its issued documents are signed with (needed to deliver into citizens' vaults)."""
    try:
        client, secret = registration.agency(name, purpose, scope or None, resource or None, role)
        if jwks is not None:
            client = dataclasses.replace(client, jwks=check_public_jwks(_json_file(jwks)))
    except InvalidArgument as error:
        fail(error.message, as_json)
        raise
    _with_store(var, as_json, lambda store: store.add(client))
    _show_registered(client, secret, "agency", as_json)


def _show_registered(client: Client, secret: str, kind: str, as_json: bool) -> None:
    data = {**describe(client), "client_secret": secret}

    def person() -> None:
        console.print(views.client_card(data, f"Registered {kind} {client.name}"))
        console.print(f"client secret (shown once, keep it safe): [bold]{secret}[/]", soft_wrap=True)

    emit(data, as_json, person)


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InvalidArgument(f"cannot read {path}: {type(error).__name__}") from None


@app.command("issue-cert")
def issue_cert(
    client_id: str,
    csr: Path = typer.Option(..., "--csr", help="The agency's certificate signing request (PEM, ECDSA P-256/P-384)."),
    out: Path | None = typer.Option(
        None, "--out", help="Where to write the certificate (default: the CSR's name, .pem)."
    ),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Issue an agency its X.509 client certificate from the platform CA (RFC 8705 §2.1.2): the CSR's signature
    must verify (proof of possession of the key); the certificate names only
    spiffe://dinhdanh.gov.vn/agency/CLIENT_ID and is for client authentication. It is recorded on the client, which
    may then authenticate with tls_client_auth and get certificate-bound tokens on the edge's mTLS port."""
    info = stack_info(var, as_json)
    ca = PlatformCA(Path(info.tls["ca"]).parent)
    if not (ca.folder / "ca.key").exists():
        fail(f"the platform CA's key is not in {ca.folder}: run this where the CA lives", as_json)
    try:
        csr_pem = csr.read_bytes()
    except OSError as error:
        fail(f"cannot read {csr}: {type(error).__name__}", as_json)
        raise
    target = out or csr.with_suffix(".pem")

    async def issue(store: ClientStore) -> registration.IssuedCertificate | str:
        try:
            return await registration.issue_certificate(store, ca.sign_agency_csr, client_id, csr_pem)
        except DomainError as error:
            return error.message

    issued = _with_store(var, as_json, issue)
    if isinstance(issued, str):
        fail(issued, as_json)
        raise AssertionError  # fail() exits
    target.write_bytes(issued.pem)
    data = {
        "client_id": client_id,
        "cert": str(target),
        "tls_client_auth_san_uri": issued.san_uri,
        "x5t#S256": issued.sha256,
        "serial": issued.serial,
        "not_after": issued.not_after.isoformat(),
    }
    emit(data, as_json, lambda: console.print(
        f"certificate of {client_id} ({issued.san_uri}, until {issued.not_after:%Y-%m-%d}) written to "
        f"[bold]{target}[/]", soft_wrap=True))  # fmt: skip


@app.command("list")
def list_clients(var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """Every registered client (never a secret)."""
    clients = _with_store(var, as_json, lambda store: store.all())
    described = [describe(c) for c in clients]
    emit({"clients": described}, as_json, lambda: console.print(views.clients_table(described)))


@app.command("rotate-secret")
def rotate_secret(client_id: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """A new secret; the old one stops working at once."""
    secret, digest = new_secret()
    if not _with_store(var, as_json, lambda store: store.set_secret(client_id, digest)):
        fail(f"no client {client_id}", as_json)
    said = f"new secret of {client_id} (shown once; the old one no longer works): [bold]{secret}[/]"
    emit({"client_id": client_id, "client_secret": secret}, as_json, lambda: console.print(said, soft_wrap=True))


@app.command("disable")
def disable(client_id: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """Refuse every request of this client from now on (its tokens expire on their own)."""
    if not _with_store(var, as_json, lambda store: store.set_disabled(client_id, True)):
        fail(f"no client {client_id}", as_json)
    emit({"client_id": client_id, "disabled": True}, as_json, lambda: console.print(
        f"{client_id} is disabled: every request of it is refused from now on"))  # fmt: skip
