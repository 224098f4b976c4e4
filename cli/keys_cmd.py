"""``dinhdanh keys``: the OpenID Provider's signing keys (publish-before-sign rotation, revocation)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import typer

from cli.output import JsonOption, VarOption, emit, fail, run, stack_info
from core.keys import purposes
from core.keys.provider import KeyUnavailable
from core.keys.sealing import Sealer
from core.keys.signing import ALGORITHMS
from core.settings import Settings
from identity.oidc import keys
from identity.oidc.server import ACCESS_TTL, ID_TOKEN_TTL
from identity.oidc.store import SigningKeyStore
from stack.secrets import SecretStore

if TYPE_CHECKING:
    from core.keys.pkcs11 import Token

app = typer.Typer(help="Signing keys of the OpenID Provider.", no_args_is_help=True)


def _sealer(var: Path, as_json: bool) -> keys.Keys:
    """The edge's key for sealing signing keys: the operator acts as the edge here, with the edge's keys; with
    ``DINHDANH_KEY_BACKEND=pkcs11`` (and the edge's ``DINHDANH_PKCS11_*``) new keys are made in the token."""
    settings = Settings()
    if settings.key_backend == "pkcs11":
        try:
            sealer = Sealer(SecretStore(var / "secrets").keys("edge").key(purposes.OIDC_SIGNING_KEY))
        except KeyUnavailable:
            sealer = None
        return keys.TokenKeys(_token(settings, as_json), sealer)
    try:
        return Sealer(SecretStore(var / "secrets").keys("edge").key(purposes.OIDC_SIGNING_KEY))
    except KeyUnavailable as error:
        fail(f"{error}; start the platform once with `dinhdanh up`", as_json)
        raise


def _token(settings: Settings, as_json: bool) -> Token:
    from core.keys.pkcs11 import Token, TokenError  # python-pkcs11: loaded by the commands that use it

    try:
        return Token.open(settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin_file)
    except TokenError as error:
        fail(str(error), as_json)
        raise


@app.command("hsm-init")
def hsm_init(
    purpose: list[str] = typer.Option(
        [], "--purpose", help="A signing purpose (repeatable); default: the log's and the issuer's keys."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Make the signing keys of these purposes in the PKCS#11 token (DINHDANH_PKCS11_MODULE, _TOKEN, _PIN_FILE)
    where it holds none, labelled by the purpose, and print their public keys (the log's verifier key to pin)."""
    chosen = purpose or [purposes.LOG_SIGNING, purposes.ISSUANCE_SIGNING]
    unknown = [name for name in chosen if name not in ALGORITHMS]
    if unknown:
        fail(f"not a signing purpose: {', '.join(unknown)} (one of {', '.join(ALGORITHMS)})", as_json)
    from audit.sequencer import Signer as LogSigner
    from services.log_settings import LogSettings

    token = _token(Settings(), as_json)
    made: dict[str, dict[str, object]] = {}
    for name in chosen:
        existed = token.find(name) is not None
        signer = token.signer(name, ALGORITHMS[name])
        made[name] = {"created": not existed, "kid": signer.kid, "public_jwk": signer.public_jwk()}
        if name == purposes.LOG_SIGNING:
            made[name]["vkey"] = LogSigner.from_signer(LogSettings().origin, signer).vkey
    emit({"token": token.label, "keys": made}, as_json)


def _with_store(var: Path, as_json: bool, action: Callable[[SigningKeyStore], Awaitable[None]]) -> dict[str, object]:
    info = stack_info(var, as_json)

    async def go() -> dict[str, object]:
        pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
        try:
            store = SigningKeyStore(pool)
            await action(store)
            listed = [{"kid": k.kid, "alg": k.alg, "state": k.state, "retire_after": k.retire_after}
                      for k in await store.keys()]  # fmt: skip
            return {"keys": listed}
        finally:
            await pool.close()

    return run(go, as_json)  # type: ignore[no-any-return]


@app.command()
def rotate(
    alg: str = typer.Option("ES256", "--alg", help="RS256 or ES256."), var: Path = VarOption, as_json: bool = JsonOption
) -> None:
    """The published next key starts signing; the old one stays in the JWKS until its tokens expire."""
    if alg not in keys.ALGORITHMS:
        fail(f"--alg is one of {', '.join(keys.ALGORITHMS)}", as_json)
    sealer = _sealer(var, as_json)
    longest = dt.timedelta(seconds=max(ACCESS_TTL, ID_TOKEN_TTL) + 60)
    emit(_with_store(var, as_json, lambda store: keys.rotate(store, sealer, alg, longest)), as_json)


@app.command()
def revoke(kid: str, var: Path = VarOption, as_json: bool = JsonOption) -> None:
    """Remove a compromised key now: the edge stops publishing it and every service stops trusting its tokens
    within the revocation poll interval (0.5 s); if it was signing, the published next key takes over."""
    sealer = _sealer(var, as_json)
    missing: list[str] = []

    async def action(store: SigningKeyStore) -> None:
        if await keys.revoke(store, sealer, kid) is None:
            missing.append(kid)

    result = _with_store(var, as_json, action)
    if missing:
        fail(f"no signing key {kid}", as_json)
    emit({"revoked": kid, **result}, as_json)
