"""PostgreSQL storage of the OpenID Provider (asyncpg): one narrow class per aggregate."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from identity.oidc.clients import Client
from identity.oidc.keys import StoredKey

_CLIENT_COLUMNS = (
    "client_id, name, kind, grant_types, scopes, auth_method, secret_hash, redirect_uris,"
    " post_logout_redirect_uris, jwks, id_token_alg, purposes, refresh_policy, disabled, resources, min_acr,"
    " tls_client_auth_san_uri, cert_sha256, roles, profile, jwks_uri, dpop_bound_access_tokens, sector_identifier,"
    " subject_type, userinfo_signed_response_alg, userinfo_encrypted_response_alg, userinfo_encrypted_response_enc,"
    " consent_ttl, public_sub_until"
)


def _client(row: asyncpg.Record) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        kind=row["kind"],
        grant_types=tuple(row["grant_types"]),
        scopes=tuple(row["scopes"]),
        auth_method=row["auth_method"],
        secret_hash=row["secret_hash"],
        redirect_uris=tuple(row["redirect_uris"]),
        post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"]),
        jwks=json.loads(row["jwks"]) if row["jwks"] else None,
        id_token_alg=row["id_token_alg"],
        purposes=tuple(row["purposes"]),
        refresh_policy=row["refresh_policy"],
        disabled=row["disabled"],
        resources=tuple(row["resources"]),
        min_acr=row["min_acr"],
        tls_client_auth_san_uri=row["tls_client_auth_san_uri"],
        cert_sha256=row["cert_sha256"],
        roles=tuple(row["roles"]),
        profile=row["profile"],
        jwks_uri=row["jwks_uri"],
        dpop_bound_access_tokens=row["dpop_bound_access_tokens"],
        sector_identifier=row["sector_identifier"],
        subject_type=row["subject_type"],
        userinfo_signed_response_alg=row["userinfo_signed_response_alg"],
        userinfo_encrypted_response_alg=row["userinfo_encrypted_response_alg"],
        userinfo_encrypted_response_enc=row["userinfo_encrypted_response_enc"],
        consent_ttl=row["consent_ttl"],
        public_sub_until=int(row["public_sub_until"].timestamp()) if row["public_sub_until"] else None,
    )


class ClientStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, client_id: str) -> Client | None:
        row = await self._pool.fetchrow(f"SELECT {_CLIENT_COLUMNS} FROM oidc.clients WHERE client_id = $1", client_id)
        return _client(row) if row else None

    async def all(self) -> list[Client]:
        rows = await self._pool.fetch(f"SELECT {_CLIENT_COLUMNS} FROM oidc.clients ORDER BY created_at")
        return [_client(r) for r in rows]

    async def add(self, c: Client) -> None:
        await self._pool.execute(
            "INSERT INTO oidc.clients (client_id, name, kind, grant_types, scopes, auth_method, secret_hash,"
            " redirect_uris, post_logout_redirect_uris, jwks, id_token_alg, purposes, refresh_policy, resources,"
            " min_acr, roles, profile, jwks_uri, dpop_bound_access_tokens, sector_identifier, subject_type,"
            " userinfo_signed_response_alg, userinfo_encrypted_response_alg, userinfo_encrypted_response_enc,"
            " consent_ttl)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15, $16, $17, $18, $19,"
            " $20, $21, $22, $23, $24, $25)",
            c.client_id, c.name, c.kind, list(c.grant_types), list(c.scopes), c.auth_method, c.secret_hash,
            list(c.redirect_uris), list(c.post_logout_redirect_uris), json.dumps(c.jwks) if c.jwks else None,
            c.id_token_alg, list(c.purposes), c.refresh_policy, list(c.resources), c.min_acr, list(c.roles),
            c.profile, c.jwks_uri, c.dpop_bound_access_tokens, c.sector_identifier, c.subject_type,
            c.userinfo_signed_response_alg, c.userinfo_encrypted_response_alg, c.userinfo_encrypted_response_enc,
            c.consent_ttl,
        )  # fmt: skip

    async def set_access(self, client_id: str, scopes: tuple[str, ...], resources: tuple[str, ...]) -> bool:
        """Replace what a client may ask for (its scopes and resources)."""
        status = await self._pool.execute(
            "UPDATE oidc.clients SET scopes = $2, resources = $3, updated_at = now() WHERE client_id = $1",
            client_id, list(scopes), list(resources),
        )  # fmt: skip
        return status == "UPDATE 1"

    async def set_secret(self, client_id: str, secret_hash: bytes) -> bool:
        status = await self._pool.execute(
            "UPDATE oidc.clients SET secret_hash = $2, updated_at = now() WHERE client_id = $1", client_id, secret_hash
        )
        return status == "UPDATE 1"

    async def set_profile(self, client: Client) -> bool:
        """An agency moved to the FAPI 2.0 profile (registration.move_agency_to_fapi2): its profile, method and keys;
        its secret dropped (docs/fapi.md, Agencies). False when there is no such agency."""
        status = await self._pool.execute(
            "UPDATE oidc.clients SET profile = $2, auth_method = $3, secret_hash = NULL, jwks = $4::jsonb,"
            " jwks_uri = $5, updated_at = now() WHERE client_id = $1 AND kind = 'agency'",
            client.client_id, client.profile, client.auth_method,
            json.dumps(client.jwks) if client.jwks is not None else None, client.jwks_uri,
        )  # fmt: skip
        return status == "UPDATE 1"

    async def set_certificate(
        self, client_id: str, san_uri: str, sha256: str, serial: str, not_after: dt.datetime
    ) -> bool:
        """Record the client certificate the platform CA issued (RFC 8705 §2.1.2 ``tls_client_auth_san_uri``);
        an agency only (False for another client or none)."""
        status = await self._pool.execute(
            "UPDATE oidc.clients SET tls_client_auth_san_uri = $2, cert_sha256 = $3, cert_serial = $4,"
            " cert_not_after = $5, updated_at = now() WHERE client_id = $1 AND kind = 'agency'",
            client_id, san_uri, sha256, serial, not_after,
        )  # fmt: skip
        return status == "UPDATE 1"

    async def set_subjects(self, client_id: str, sector: str, public_sub_until: dt.datetime | None) -> bool:
        """Switch a portal to pairwise subjects of ``sector`` (OIDC Core §8.1); ``public_sub_until``: the end of
        the window in which its ID tokens still carry the previous public ``sub`` (docs/privacy.md)."""
        status = await self._pool.execute(
            "UPDATE oidc.clients SET subject_type = 'pairwise', sector_identifier = $2, public_sub_until = $3,"
            " updated_at = now() WHERE client_id = $1 AND kind = 'portal'",
            client_id, sector, public_sub_until,
        )  # fmt: skip
        return status == "UPDATE 1"

    async def set_disabled(self, client_id: str, disabled: bool) -> bool:
        status = await self._pool.execute(
            "UPDATE oidc.clients SET disabled = $2, updated_at = now() WHERE client_id = $1", client_id, disabled
        )
        return status == "UPDATE 1"


class SigningKeyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def keys(self) -> list[StoredKey]:
        rows = await self._pool.fetch(
            "SELECT kid, alg, sealed_key, public_jwk, state, retire_after FROM oidc.signing_keys ORDER BY created_at"
        )
        return [
            StoredKey(r["kid"], r["alg"], r["sealed_key"], json.loads(r["public_jwk"]), r["state"], r["retire_after"])
            for r in rows
        ]

    async def add(self, key: StoredKey) -> None:
        await self._pool.execute(
            "INSERT INTO oidc.signing_keys (kid, alg, sealed_key, public_jwk, state)"
            " VALUES ($1, $2, $3, $4::jsonb, $5)",
            key.kid, key.alg, key.sealed_key, json.dumps(key.public_jwk), key.state,
        )  # fmt: skip

    async def promote(self, alg: str, retire_after: dt.datetime) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE oidc.signing_keys SET state = 'retired', retire_after = $2"
                " WHERE alg = $1 AND state = 'current'",
                alg, retire_after,
            )  # fmt: skip
            await conn.execute("UPDATE oidc.signing_keys SET state = 'current' WHERE alg = $1 AND state = 'next'", alg)

    async def prune(self, now: dt.datetime) -> None:
        await self._pool.execute("DELETE FROM oidc.signing_keys WHERE state = 'retired' AND retire_after < $1", now)

    async def revoke(self, kid: str, successor: StoredKey | None) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            removed = await conn.fetchrow("DELETE FROM oidc.signing_keys WHERE kid = $1 RETURNING alg, state", kid)
            if removed is None:
                return False
            if removed["state"] == "current":
                await conn.execute(
                    "UPDATE oidc.signing_keys SET state = 'current' WHERE alg = $1 AND state = 'next'", removed["alg"]
                )
            if successor is not None:
                await conn.execute(
                    "INSERT INTO oidc.signing_keys (kid, alg, sealed_key, public_jwk, state)"
                    " VALUES ($1, $2, $3, $4::jsonb, 'next')",
                    successor.kid, successor.alg, successor.sealed_key, json.dumps(successor.public_jwk),
                )  # fmt: skip
            return True


@dataclass(frozen=True)
class RefreshRecord:
    token_hash: bytes
    family: uuid.UUID
    client_id: str
    subject: str
    scope: str
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    expires_at: dt.datetime
    used: bool
    revoked: bool
    resources: tuple[str, ...] = ()  # the grant's resources (RFC 8707): a refresh may narrow, never add
    sid: str | None = None  # the SSO session it ends with (no offline_access), else None
    userinfo_claims: dict[str, Any] | None = None  # the grant's claims parameter for userinfo (Core §5.5, 0023)


def _json_or_none(value: Any) -> str | None:
    return json.dumps(value, separators=(",", ":")) if value else None


class TokenStore:
    """Refresh token families (rotation, reuse detection), used codes, revoked access tokens."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def refresh(self, token_hash: bytes) -> RefreshRecord | None:
        row = await self._pool.fetchrow(
            "SELECT token_hash, family, client_id, subject, scope, auth_time, acr, amr, expires_at, resources, sid,"
            " used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked, userinfo_claims"
            " FROM oidc.refresh_tokens WHERE token_hash = $1",
            token_hash,
        )
        if row is None:
            return None
        asked = json.loads(row["userinfo_claims"]) if row["userinfo_claims"] else None
        return RefreshRecord(**{**dict(row), "amr": tuple(row["amr"]), "resources": tuple(row["resources"]),
                                "userinfo_claims": asked})  # fmt: skip

    async def add_refresh(
        self, record: RefreshRecord, code_id: str | None, conn: asyncpg.Connection | None = None
    ) -> None:
        await (conn or self._pool).execute(
            "INSERT INTO oidc.refresh_tokens (token_hash, family, client_id, subject, scope, auth_time, acr, amr,"
            " code_id, expires_at, resources, sid, userinfo_claims)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)",
            record.token_hash, record.family, record.client_id, record.subject, record.scope, record.auth_time,
            record.acr, list(record.amr), code_id, record.expires_at, list(record.resources), record.sid,
            _json_or_none(record.userinfo_claims),
        )  # fmt: skip

    async def rotate(self, old_hash: bytes, new: RefreshRecord) -> bool:
        """Use up ``old_hash`` and store its successor in one statement; False when it was used already."""
        status = await self._pool.fetchval(
            "WITH used AS (UPDATE oidc.refresh_tokens SET used_at = now()"
            "              WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL RETURNING family),"
            " added AS (INSERT INTO oidc.refresh_tokens (token_hash, family, client_id, subject, scope, auth_time,"
            "           acr, amr, expires_at, resources, sid, userinfo_claims)"
            "           SELECT $2, family, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb FROM used)"
            " SELECT count(*) FROM used",
            old_hash, new.token_hash, new.client_id, new.subject, new.scope, new.auth_time, new.acr,
            list(new.amr), new.expires_at, list(new.resources), new.sid, _json_or_none(new.userinfo_claims),
        )  # fmt: skip
        return bool(status)

    async def revoke_family(self, family: uuid.UUID) -> None:
        await self._pool.execute(
            "UPDATE oidc.refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL", family
        )

    async def redeem_code(
        self, code_id: str, expires_at: dt.datetime, access: list[tuple[str, dt.datetime]],
        refresh: RefreshRecord | None,
    ) -> bool:  # fmt: skip
        """Record a code as redeemed together with what it issued (its access tokens' ids, its refresh token),
        in one transaction; False when it was redeemed before, and then everything the first redemption issued
        is revoked (RFC 6749 §4.1.2, RFC 9700 §4.5): the refresh family and the access tokens.

        A concurrent second redemption waits on the first one's uncommitted row (the primary key), so it always
        sees the access tokens and the refresh token the first one issued."""
        access_until = max((exp for _, exp in access), default=None)
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "INSERT INTO oidc.used_codes (code_id, expires_at, access_jtis, access_expires_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                code_id, expires_at, [jti for jti, _ in access], access_until,
            )  # fmt: skip
            if status == "INSERT 0 1":
                if refresh is not None:
                    await self.add_refresh(refresh, code_id, conn)
                return True
            await conn.execute(
                "UPDATE oidc.refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL"
                " AND family IN (SELECT family FROM oidc.refresh_tokens WHERE code_id = $1)",
                code_id,
            )
            # clock_timestamp(): services poll by revoked_at; a transaction's start time could hide the row
            await conn.execute(
                "INSERT INTO oidc.revoked_tokens (jti, expires_at, revoked_at)"
                " SELECT unnest(access_jtis), access_expires_at, clock_timestamp() FROM oidc.used_codes"
                " WHERE code_id = $1 AND access_expires_at IS NOT NULL ON CONFLICT DO NOTHING",
                code_id,
            )
            return False

    async def claim_assertion(self, client_id: str, jti: str, until: dt.datetime) -> bool:
        """Use up a client assertion's ``jti`` (RFC 7523 §3 item 7) across every process: True the first time
        within its acceptance window. A row whose window is over may be claimed again (its assertion cannot
        verify any more, and a client reusing an old jti value later is not refused for ever).

        The same statement prunes up to 100 of this client's ids whose window is over (rows another request holds
        are skipped, never waited for), so the table keeps each client's live window, not its history."""
        status = await self._pool.execute(
            "WITH pruned AS (DELETE FROM oidc.client_assertions WHERE (client_id, jti) IN ("
            "   SELECT client_id, jti FROM oidc.client_assertions WHERE client_id = $1 AND jti <> $2"
            "   AND expires_at < now() LIMIT 100 FOR UPDATE SKIP LOCKED))"
            " INSERT INTO oidc.client_assertions AS a (client_id, jti, expires_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at WHERE a.expires_at < now()",
            client_id, jti, until,
        )  # fmt: skip
        return bool(status == "INSERT 0 1")

    async def revoke_access(self, jti: str, expires_at: dt.datetime) -> None:
        await self._pool.execute(
            "INSERT INTO oidc.revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", jti, expires_at
        )

    async def access_revoked(self, jti: str) -> bool:
        return bool(await self._pool.fetchval("SELECT 1 FROM oidc.revoked_tokens WHERE jti = $1", jti))


@dataclass(frozen=True)
class SessionRecord:
    """A started SSO session as the citizen's security page lists it (migration 0025)."""

    sid: str
    started_at: dt.datetime
    ends_at: dt.datetime
    first_portal: str
    last_portal: str
    source_kind: str  # "device" or "address"
    user_agent: str  # a short summary: "Firefox on Linux"
    amr: tuple[str, ...]
    ended_at: dt.datetime | None


class SessionStore:
    """SSO sessions travel sealed in a cookie; the store records the started ones (``oidc.sso_sessions``, for the
    citizen's list) and the ended ones (``oidc.ended_sessions``, what ``Provider.session_user`` checks)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ended(self, sid: str) -> bool:
        return bool(await self._pool.fetchval("SELECT 1 FROM oidc.ended_sessions WHERE sid = $1", sid))

    async def end(self, sid: str, expires_at: dt.datetime) -> None:
        await self._pool.execute(
            "WITH listed AS (UPDATE oidc.sso_sessions SET ended_at = now() WHERE sid = $1 AND ended_at IS NULL)"
            " INSERT INTO oidc.ended_sessions (sid, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", sid, expires_at
        )

    async def started(self, record: SessionRecord, sub: str) -> None:
        await self._pool.execute(
            "INSERT INTO oidc.sso_sessions (sid, sub, started_at, ends_at, first_portal, last_portal, source_kind,"
            " user_agent, amr) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) ON CONFLICT (sid) DO NOTHING",
            record.sid, sub, record.started_at, record.ends_at, record.first_portal, record.source_kind,
            record.user_agent[:80], list(record.amr),
        )  # fmt: skip

    async def served(self, sid: str, portal: str) -> None:
        """The session just answered ``portal`` (single sign-on): its last portal."""
        await self._pool.execute(
            "UPDATE oidc.sso_sessions SET last_portal = $2 WHERE sid = $1 AND last_portal <> $2", sid, portal
        )

    async def active(self, sub: str, limit: int = 50) -> list[SessionRecord]:
        """The citizen's sessions not ended nor expired, newest first."""
        rows = await self._pool.fetch(
            "SELECT sid, started_at, ends_at, first_portal, last_portal, source_kind, user_agent, amr, ended_at"
            " FROM oidc.sso_sessions WHERE sub = $1 AND ended_at IS NULL AND ends_at > now()"
            " ORDER BY started_at DESC LIMIT $2",
            sub, limit,
        )  # fmt: skip
        return [SessionRecord(**{**dict(r), "amr": tuple(r["amr"])}) for r in rows]

    async def end_all(self, sub: str) -> tuple[int, int]:
        """Sign out everywhere: end every live session of ``sub`` and revoke the refresh tokens bound to them
        (``RefreshRecord.sid``), in one transaction; (sessions ended, refresh tokens revoked)."""
        async with self._pool.acquire() as conn, conn.transaction():
            ended = await conn.fetch(
                "UPDATE oidc.sso_sessions SET ended_at = now() WHERE sub = $1 AND ended_at IS NULL AND ends_at > now()"
                " RETURNING sid, ends_at",
                sub,
            )
            sids = [r["sid"] for r in ended]
            if not sids:
                return 0, 0
            await conn.execute(
                "INSERT INTO oidc.ended_sessions (sid, expires_at) SELECT * FROM unnest($1::text[], $2::timestamptz[])"
                " ON CONFLICT DO NOTHING",
                sids, [r["ends_at"] for r in ended],
            )  # fmt: skip
            revoked = await conn.execute(
                "UPDATE oidc.refresh_tokens SET revoked_at = now() WHERE sid = ANY($1::text[]) AND revoked_at IS NULL",
                sids,
            )
        return len(sids), int(revoked.split()[-1])


@dataclass(frozen=True)
class Consent:
    """What a citizen agreed a client may have: scopes and resources (RFC 8707), each remembered."""

    scopes: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()

    def covers(self, scopes: set[str], resources: set[str]) -> bool:
        return scopes <= self.scopes and resources <= self.resources


@dataclass(frozen=True)
class Remembered:
    """A remembered consent as its citizen sees it (/account/portals): the portal, what it may have, until when."""

    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    resources: tuple[str, ...]
    granted_at: dt.datetime
    expires_at: dt.datetime


_LIVE = "c.granted_at + make_interval(secs => k.consent_ttl) > now()"  # the client's consent_ttl (issue 13 §2)


class ConsentStore:
    """Remembered consents (``oidc.consents``, by internal subject): each lasts its client's ``consent_ttl`` from
    when it was last given; the citizen may withdraw one, which revokes that portal's refresh tokens too."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def granted(self, subject: str, client_id: str) -> Consent:
        """What is remembered and not expired (a consent older than the client's ``consent_ttl`` is none)."""
        row = await self._pool.fetchrow(
            "SELECT c.scopes, c.resources FROM oidc.consents c JOIN oidc.clients k USING (client_id)"
            f" WHERE c.subject = $1 AND c.client_id = $2 AND {_LIVE}",
            subject, client_id,
        )  # fmt: skip
        return Consent(frozenset(row["scopes"]), frozenset(row["resources"])) if row else Consent()

    async def grant(self, subject: str, client_id: str, scopes: set[str], resources: set[str]) -> None:
        """Add to what was consented before (a consent to fewer scopes later withdraws nothing); an expired
        consent is replaced, never extended (its scopes were not given again)."""
        await self._pool.execute(
            "INSERT INTO oidc.consents AS c (subject, client_id, scopes, resources) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (subject, client_id) DO UPDATE SET"
            " scopes = CASE WHEN (SELECT c.granted_at + make_interval(secs => k.consent_ttl) > now()"
            "   FROM oidc.clients k WHERE k.client_id = c.client_id)"
            "   THEN ARRAY(SELECT DISTINCT unnest(c.scopes || excluded.scopes) ORDER BY 1) ELSE excluded.scopes END,"
            " resources = CASE WHEN (SELECT c.granted_at + make_interval(secs => k.consent_ttl) > now()"
            "   FROM oidc.clients k WHERE k.client_id = c.client_id)"
            "   THEN ARRAY(SELECT DISTINCT unnest(c.resources || excluded.resources) ORDER BY 1)"
            "   ELSE excluded.resources END,"
            " granted_at = now()",
            subject, client_id, sorted(scopes), sorted(resources),
        )  # fmt: skip

    async def remembered(self, subject: str) -> list[Remembered]:
        """A citizen's live remembered consents, the latest first."""
        rows = await self._pool.fetch(
            "SELECT c.client_id, k.name, c.scopes, c.resources, c.granted_at,"
            " c.granted_at + make_interval(secs => k.consent_ttl) AS expires_at"
            f" FROM oidc.consents c JOIN oidc.clients k USING (client_id) WHERE c.subject = $1 AND {_LIVE}"
            " ORDER BY c.granted_at DESC",
            subject,
        )
        return [Remembered(r["client_id"], r["name"], tuple(r["scopes"]), tuple(r["resources"]), r["granted_at"],
                           r["expires_at"]) for r in rows]  # fmt: skip

    async def withdraw(self, subject: str, client_id: str) -> int:
        """Forget the citizen's consent to one portal and revoke that portal's refresh tokens for them (one
        transaction): its next sign-in asks again. How many refresh tokens were revoked."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM oidc.consents WHERE subject = $1 AND client_id = $2", subject, client_id)
            status = await conn.execute(
                "UPDATE oidc.refresh_tokens SET revoked_at = now()"
                " WHERE subject = $1 AND client_id = $2 AND revoked_at IS NULL",
                subject, client_id,
            )  # fmt: skip
        return int(status.split()[-1])

    async def subjects(self, client_id: str) -> list[str]:
        """The internal subjects of the citizens whose consent to this client is remembered and live."""
        rows = await self._pool.fetch(
            "SELECT c.subject FROM oidc.consents c JOIN oidc.clients k USING (client_id)"
            f" WHERE c.client_id = $1 AND {_LIVE} ORDER BY c.subject",
            client_id,
        )
        return [r["subject"] for r in rows]


def as_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
