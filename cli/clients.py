"""``dinhdanh clients``: register portals and agencies, list, rotate secrets, disable."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import typer

from agency import keyed
from cli import views
from cli.output import JsonOption, VarOption, console, emit, fail, run, stack_info
from core.errors import DomainError, InvalidArgument
from core.keys import purposes
from identity.oidc import registration
from identity.oidc.clients import Client, new_secret
from identity.oidc.store import ClientStore, ConsentStore
from identity.oidc.subjects import PAIRWISE, SectorError, Subjects, sector_for
from stack.pki import PlatformCA
from stack.secrets import SecretStore
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
        "subject_type": client.subject_type,
        "sector_identifier": client.sector_identifier,
        "consent_ttl": client.consent_ttl,
        "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
        "userinfo_encrypted_response_alg": client.userinfo_encrypted_response_alg,
        "userinfo_encrypted_response_enc": client.userinfo_encrypted_response_enc,
        "profile": client.profile,  # plain or fapi2 (FAPI 2.0 Security Profile, docs/fapi.md)
        "token_endpoint_auth_method": client.auth_method,
        "jwks_uri": client.jwks_uri,
        "require_pushed_authorization_requests": client.profile == "fapi2",  # RFC 9126 §6
        **({"migrate": registration.LEGACY_AGENCY} if registration.legacy_agency(client) else {}),
    }


@app.command("add-portal")
def add_portal(
    name: str = typer.Option(..., "--name"),
    redirect_uri: list[str] = typer.Option(..., "--redirect-uri", help="Exact redirect URI (repeatable)."),
    post_logout_uri: list[str] = typer.Option([], "--post-logout-uri", help="Where logout may return (repeatable)."),
    id_token_alg: str | None = typer.Option(
        None, "--id-token-alg", help="RS256 (default) or ES256 (the default, and the only one, with --profile fapi2)."
    ),
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
    sector: str | None = typer.Option(
        None, "--sector", help="Its sector identifier (a host; default: the one host of its redirect URIs)."
    ),
    subject_type: str = typer.Option(
        "pairwise", "--subject-type", help="pairwise (default: sub per sector) or public."
    ),
    consent_days: int | None = typer.Option(
        None, "--consent-days", help="Days a remembered consent to it lasts (default 180)."
    ),
    profile: str = typer.Option(
        "plain", "--profile", help="plain, or fapi2 (FAPI 2.0: PAR, private_key_jwt, ES256; with --jwks-uri or --jwks)."
    ),
    jwks_uri: str | None = typer.Option(None, "--jwks-uri", help="Where it publishes its keys (private_key_jwt)."),
    jwks: Path | None = typer.Option(None, "--jwks", help="Its public keys for private_key_jwt (JWKS JSON file)."),
    userinfo_signed_alg: str | None = typer.Option(
        None, "--userinfo-signed-alg", help="Userinfo as a JWT signed with this algorithm (RS256, ES256)."
    ),
    userinfo_encrypted_alg: str | None = typer.Option(
        None, "--userinfo-encrypted-alg", help="Userinfo encrypted to its key: RSA-OAEP-256, ECDH-ES, ..."
    ),
    userinfo_encrypted_enc: str | None = typer.Option(
        None, "--userinfo-encrypted-enc", help="Content encryption: A128CBC-HS256 (default), A128GCM, A256GCM, ..."
    ),
    encryption_jwks: Path | None = typer.Option(
        None, "--encryption-jwks", help="Its public encryption keys (use: enc) for encrypted userinfo (JWKS file)."
    ),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Register a confidential portal; prints client_id and client_secret (shown once). It may ask for openid and
    profile only, plus each --scope and --resource given. Its citizens' sub is pairwise per --sector (OpenID
    Connect Core section 8.1): portals registered under one sector share it, no other portal can join on it."""
    try:
        client, secret = registration.portal(name, redirect_uri, post_logout_uri, id_token_alg, refresh, scope,
                                             resource, min_acr, sector, subject_type,
                                             consent_days * 86400 if consent_days is not None else None,
                                             profile=profile, jwks_uri=jwks_uri,
                                             jwks=_json_file(jwks) if jwks is not None else None)  # fmt: skip
        client = registration.userinfo_response(client, userinfo_signed_alg, userinfo_encrypted_alg,
                                                userinfo_encrypted_enc,
                                                _json_file(encryption_jwks) if encryption_jwks else None)  # fmt: skip
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
    profile: str | None = typer.Option(
        None, "--profile", help="fapi2 only (the default): an agency is always on the FAPI 2.0 profile."
    ),
    jwks_uri: str | None = typer.Option(None, "--jwks-uri", help="Where it publishes its private_key_jwt keys."),
    key_out: Path | None = typer.Option(
        None, "--key-out", help="Generate its ES256 key pair: the private JWK is written here (0600), the public one"
        " registered (private_key_jwt)."
    ),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Register an agency (client_credentials) on the FAPI 2.0 profile; no client secret. It authenticates with
    private_key_jwt against --jwks (its public keys, which also verify the documents it issues), --jwks-uri or the
    key --key-out generates; with none of them, with tls_client_auth after `dinhdanh clients issue-cert`."""
    try:
        if key_out is not None and (jwks is not None or jwks_uri is not None):
            raise InvalidArgument("--key-out generates the agency's keys: not with --jwks or --jwks-uri")
        private = keyed.new_key() if key_out is not None else None
        keys = (check_public_jwks(_json_file(jwks)) if jwks is not None
                else {"keys": [private.as_dict(private=False)]} if private is not None else None)  # fmt: skip
        client, secret = registration.agency(name, purpose, scope or None, resource or None, role, profile=profile,
                                             jwks_uri=jwks_uri, jwks=keys)  # fmt: skip
    except InvalidArgument as error:
        fail(error.message, as_json)
        raise
    if key_out is not None and private is not None:
        unwritten = _write_private(key_out, json.dumps(private.as_dict(private=True)) + "\n")
        if unwritten:
            fail(unwritten, as_json)
    _with_store(var, as_json, lambda store: store.add(client))
    _show_registered(client, secret, "agency", as_json, key_out)


@app.command("set-key")
def set_key(
    client_id: str,
    jwks: Path | None = typer.Option(None, "--jwks", help="Its public keys (JWKS JSON file): private_key_jwt."),
    jwks_uri: str | None = typer.Option(None, "--jwks-uri", help="Where it publishes its keys: private_key_jwt."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Move an agency registered with a client secret (plain, before issue 13) to the FAPI 2.0 profile: with
    --jwks or --jwks-uri it authenticates with private_key_jwt, with neither with tls_client_auth (its certificate
    from issue-cert); its client secret stops working at once (docs/fapi.md, Agencies)."""
    try:
        keys = check_public_jwks(_json_file(jwks)) if jwks is not None else None
    except InvalidArgument as error:
        fail(error.message, as_json)
        raise

    async def move(store: ClientStore) -> Client | str:
        client = await store.get(client_id)
        if client is None:
            return f"no client {client_id}"
        try:
            moved = registration.move_agency_to_fapi2(client, keys, jwks_uri)
        except InvalidArgument as error:
            return error.message
        if not await store.set_profile(moved):
            return f"no client {client_id}"
        return moved

    moved = _with_store(var, as_json, move)
    if isinstance(moved, str):
        fail(moved, as_json)
        raise AssertionError  # fail() exits
    said = f"{client_id} is on the FAPI 2.0 profile ({moved.auth_method}); its client secret no longer works"
    emit(describe(moved), as_json, lambda: console.print(said))


def _show_registered(client: Client, secret: str, kind: str, as_json: bool, key_out: Path | None = None) -> None:
    data = {**describe(client), **({"client_secret": secret} if secret else {})}  # none: it authenticates with a key
    if key_out is not None:
        data["private_key"] = str(key_out)

    def person() -> None:
        console.print(views.client_card(data, f"Registered {kind} {client.name}"))
        if secret:
            console.print(f"client secret (shown once, keep it safe): [bold]{secret}[/]", soft_wrap=True)
        if key_out is not None:
            console.print(f"its private key (private_key_jwt, keep it safe) is in [bold]{key_out}[/]", soft_wrap=True)

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


@app.command("subjects")
def subjects(
    client_id: str,
    pairwise: bool = typer.Option(..., "--pairwise", help="Switch the portal to pairwise subjects (one way)."),
    sector: str | None = typer.Option(
        None, "--sector", help="Its sector identifier (a host; default: the one host of its redirect URIs)."
    ),
    window_days: int = typer.Option(
        90, "--window-days", help="Days its ID tokens still carry the previous public sub (claim previous_sub)."
    ),
    out: Path = typer.Option(..., "--out", help="Where to write the old -> new sub mapping for the portal (JSON)."),
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Move a public portal to pairwise subjects (OpenID Connect Core section 8.1) without breaking its users: writes
    for the portal the mapping of its citizens' public sub to their new pairwise sub (every citizen whose consent
    to it is remembered), then switches it; for --window-days its ID tokens carry the previous public sub in the
    claim previous_sub, so a citizen who was not in the mapping is still recognised (docs/privacy.md)."""
    if not pairwise:
        fail("only --pairwise: a pairwise portal never goes back to public subjects", as_json)
    if not 0 <= window_days <= 3650:
        fail("--window-days is 0 to 3650", as_json)
    key = SecretStore(var / "secrets").keys("edge").key(purposes.OIDC_SUBJECT)
    info = stack_info(var, as_json)

    async def go() -> dict[str, Any] | str:
        pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
        try:
            return await _switch(pool, key, client_id, sector, window_days, out)
        finally:
            await pool.close()

    result = run(go, as_json)
    if isinstance(result, str):
        fail(result, as_json)
        raise AssertionError  # fail() exits
    emit(result, as_json, lambda: console.print(
        f"{client_id} now has pairwise subjects of sector {result['sector_identifier']}; the mapping of "
        f"{result['citizens']} citizens is in [bold]{out}[/]; previous_sub in its ID tokens until "
        f"{result['previous_sub_until']}", soft_wrap=True))  # fmt: skip


async def _switch(
    pool: asyncpg.Pool, key: bytes, client_id: str, sector: str | None, window_days: int, out: Path
) -> dict[str, Any] | str:
    """The mapping (written first: a failed write leaves the portal public), then the switch."""
    store = ClientStore(pool)
    client = await store.get(client_id)
    if client is None or client.kind != "portal":
        return f"no portal {client_id}"
    if client.subject_type == PAIRWISE:
        return f"{client_id} has pairwise subjects already"
    try:
        chosen = sector_for(client.redirect_uris, sector or client.sector_identifier)
    except SectorError as error:
        return str(error)
    subjects, mapping = Subjects(key), []
    for internal in await ConsentStore(pool).subjects(client_id):
        id_number = subjects.id_number(internal)
        if id_number is not None:  # the public sub of a public portal is the internal subject
            mapping.append({"previous_sub": internal, "sub": subjects.subject(id_number, chosen)})
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=window_days)
    document = {"client_id": client_id, "sector_identifier": chosen, "previous_sub_until": until.isoformat(),
                "subjects": mapping}  # fmt: skip
    unwritten = _write_private(out, json.dumps(document, indent=1) + "\n")
    if unwritten:
        return unwritten
    if not await store.set_subjects(client_id, chosen, until if window_days else None):
        return f"no portal {client_id}"
    return {"client_id": client_id, "subject_type": PAIRWISE, "sector_identifier": chosen,
            "previous_sub_until": until.isoformat() if window_days else None, "citizens": len(mapping),
            "mapping": str(out)}  # fmt: skip


def _write_private(path: Path, text: str) -> str | None:
    """Write a file only its owner reads (it links each citizen's old and new sub); why not, or None."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
    except OSError as error:
        return f"cannot write {path}: {type(error).__name__}"
    return None


@app.command("list")
def list_clients(var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """Every registered client (never a secret)."""
    clients = _with_store(var, as_json, lambda store: store.all())
    described = [describe(c) for c in clients]
    emit({"clients": described}, as_json, lambda: console.print(views.clients_table(described)))


@app.command("rotate-secret")
def rotate_secret(client_id: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """A new secret; the old one stops working at once. Never for an agency (FAPI 2.0: it holds a key)."""
    async def agency(store: ClientStore) -> bool:
        client = await store.get(client_id)
        return client is not None and client.kind == "agency"

    if _with_store(var, as_json, agency):
        fail(f"{client_id} is an agency: agencies get no client secret (FAPI 2.0 profile); use set-key", as_json)
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
