"""``dinhdanh keys``: the OpenID Provider's signing keys (publish-before-sign rotation)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg
import typer

from cli.output import JsonOption, VarOption, emit, fail, run, stack_info
from identity.oidc import keys
from identity.oidc.server import ACCESS_TTL, ID_TOKEN_TTL
from identity.oidc.store import SigningKeyStore
from identity.sealing import Sealer

app = typer.Typer(help="Signing keys of the OpenID Provider.", no_args_is_help=True)


@app.command()
def rotate(
    alg: str = typer.Option("ES256", "--alg", help="RS256 or ES256."), var: Path = VarOption, as_json: bool = JsonOption
) -> None:
    """The published next key starts signing; the old one stays in the JWKS until its tokens expire."""
    if alg not in keys.ALGORITHMS:
        fail(f"--alg is one of {', '.join(keys.ALGORITHMS)}", as_json)
    info = stack_info(var, as_json)
    sealer = Sealer((var / "secrets" / "identity.key").read_bytes(), "oidc-signing-key")

    async def go() -> dict[str, object]:
        pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
        try:
            store = SigningKeyStore(pool)
            longest = dt.timedelta(seconds=max(ACCESS_TTL, ID_TOKEN_TTL) + 60)
            await keys.rotate(store, sealer, alg, longest)
            return {"keys": [{"kid": k.kid, "alg": k.alg, "state": k.state} for k in await store.keys()]}
        finally:
            await pool.close()

    emit(run(go, as_json), as_json)
