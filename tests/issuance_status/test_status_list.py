"""Revocation and suspension of issued certificates as an IETF Token Status List (issuance/revocation.py,
issuance/status_store.py) and what the edge publishes for verifiers (services/edge/issuance_routes.py), on the
real stack: the issuance role's grants, the edge's role, the issuer key the stack gave the issuance process."""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from core.errors import FailedPrecondition, InvalidArgument, NotFound
from issuance import revocation
from issuance.issuer_keys import SigningKey, b64url_decode
from issuance.revocation import CredentialStatus
from issuance.status_list import Status, verify_status_list
from issuance.status_store import PostgresStatusStore
from issuance.verify import Outcome, verify_presented
from tests.issuance_status.conftest import MakeDossier

pytestmark = pytest.mark.usefixtures("published_keys")
OFFICER = "officer-0123456789abcdef"


async def served_list(http: httpx.AsyncClient, issuer: str) -> httpx.Response:
    response = await http.get(f"{issuer}/statuslists/0")
    assert response.status_code == 200, response.text
    return response


async def issuer_jwks(http: httpx.AsyncClient, issuer: str) -> dict[str, object]:
    response = await http.get(f"{issuer}/.well-known/jwt-vc-issuer")
    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata["issuer"] == issuer
    return metadata["jwks"]


async def served_status(http: httpx.AsyncClient, issuer: str, index: int) -> Status:
    token = (await served_list(http, issuer)).text
    verified = verify_status_list(token, await issuer_jwks(http, issuer), uri=f"{issuer}/statuslists/0",
                                  at=datetime.now(UTC))  # fmt: skip
    return verified.status_list.status(index)


async def stored_status(pool: asyncpg.Pool, dossier_id: object) -> str:
    return await pool.fetchval("SELECT credential_status FROM issuance.dossiers WHERE id = $1", dossier_id)


async def test_a_revoked_certificate_is_revoked_in_the_served_list_and_its_qr_verifies_as_revoked(
    store: PostgresStatusStore, issued_dossier: MakeDossier, http: httpx.AsyncClient, issuer: str,
    owner_pool: asyncpg.Pool, tmp_path: Path,
) -> None:  # fmt: skip
    dossier = await issued_dossier()
    status = await revocation.revoke(store, str(dossier.id), "cấp nhầm người", OFFICER)
    assert status is CredentialStatus.REVOKED
    assert await stored_status(owner_pool, dossier.id) == "REVOKED"
    assert await served_status(http, issuer, dossier.status_index) is Status.INVALID

    token = (await served_list(http, issuer)).text
    jwks = await issuer_jwks(http, issuer)
    verdict = verify_presented(dossier.qr_text, issuer_jwks=jwks, status_lists=[token], at=datetime.now(UTC))
    assert (verdict.outcome, verdict.status_checked) == (Outcome.REVOKED, True)

    (tmp_path / "keys.json").write_text(json.dumps(jwks))
    (tmp_path / "list.jwt").write_text(token)
    command = [sys.executable, "-m", "cli.main", "verify", dossier.qr_text, "--keys", str(tmp_path / "keys.json"),
               "--status-list", str(tmp_path / "list.jwt")]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 1, err.decode()
    assert out.decode().startswith("REVOKED"), out.decode()

    row = await owner_pool.fetchrow(
        "SELECT actor, outcome, subject, detail FROM audit.events WHERE action = 'issuance.revoke'"
        " AND detail->>'dossier_id' = $1",
        str(dossier.id),
    )
    assert (row["actor"], row["outcome"], row["subject"]) == (f"agency:{OFFICER}", "success", dossier.subject)
    detail = json.loads(row["detail"])
    assert (detail["from"], detail["to"], detail["reason"]) == ("VALID", "REVOKED", "cấp nhầm người")
    assert await owner_pool.fetchval("SELECT count(*) FROM issuance.dossier_events WHERE dossier_id = $1",
                                     dossier.id) == 0  # fmt: skip


async def test_suspend_then_reinstate(
    store: PostgresStatusStore, issued_dossier: MakeDossier, http: httpx.AsyncClient, issuer: str,
    owner_pool: asyncpg.Pool,
) -> None:  # fmt: skip
    dossier = await issued_dossier()
    assert await revocation.suspend(store, dossier.id, "đang xác minh lại", OFFICER) is CredentialStatus.SUSPENDED
    assert await stored_status(owner_pool, dossier.id) == "SUSPENDED"
    assert await served_status(http, issuer, dossier.status_index) is Status.SUSPENDED
    token = (await served_list(http, issuer)).text
    jwks = await issuer_jwks(http, issuer)
    assert (
        verify_presented(dossier.qr_text, issuer_jwks=jwks, status_lists=[token], at=datetime.now(UTC)).outcome
        is Outcome.SUSPENDED
    )

    assert await revocation.reinstate(store, dossier.id, "đã xác minh", OFFICER) is CredentialStatus.VALID
    assert await stored_status(owner_pool, dossier.id) == "VALID"
    assert await served_status(http, issuer, dossier.status_index) is Status.VALID
    token = (await served_list(http, issuer)).text
    assert (
        verify_presented(dossier.qr_text, issuer_jwks=jwks, status_lists=[token], at=datetime.now(UTC)).outcome
        is Outcome.VALID
    )


async def test_a_suspended_certificate_can_be_revoked_and_revocation_is_final(
    store: PostgresStatusStore, issued_dossier: MakeDossier, owner_pool: asyncpg.Pool
) -> None:
    dossier = await issued_dossier()
    await revocation.suspend(store, dossier.id, "đang xác minh", OFFICER)
    assert await revocation.revoke(store, dossier.id, "hồ sơ sai", OFFICER) is CredentialStatus.REVOKED
    with pytest.raises(FailedPrecondition, match="REVOKED, a final state"):
        await revocation.revoke(store, dossier.id, "lần nữa", OFFICER)
    with pytest.raises(FailedPrecondition, match="REVOKED, a final state"):
        await revocation.reinstate(store, dossier.id, "khôi phục", OFFICER)
    with pytest.raises(FailedPrecondition):
        await revocation.suspend(store, dossier.id, "tạm dừng", OFFICER)
    assert await stored_status(owner_pool, dossier.id) == "REVOKED"
    refused = await owner_pool.fetch(
        "SELECT action FROM audit.events WHERE outcome = 'refused' AND detail->>'dossier_id' = $1 ORDER BY id",
        str(dossier.id),
    )
    assert [row["action"] for row in refused] == ["issuance.revoke", "issuance.reinstate", "issuance.suspend"]


async def test_reinstating_a_valid_certificate_or_suspending_twice_is_refused(
    store: PostgresStatusStore, issued_dossier: MakeDossier
) -> None:
    dossier = await issued_dossier()
    with pytest.raises(FailedPrecondition, match="VALID certificate cannot REINSTATE"):
        await revocation.reinstate(store, dossier.id, "không có gì", OFFICER)
    await revocation.suspend(store, dossier.id, "tạm dừng", OFFICER)
    with pytest.raises(FailedPrecondition, match="SUSPENDED certificate cannot SUSPEND"):
        await revocation.suspend(store, dossier.id, "tạm dừng", OFFICER)


async def test_only_an_issued_dossier_has_a_status_to_change(
    store: PostgresStatusStore, issued_dossier: MakeDossier
) -> None:
    approved = await issued_dossier(status="APPROVED")
    with pytest.raises(FailedPrecondition, match="this dossier is APPROVED"):
        await revocation.revoke(store, approved.id, "nhầm", OFFICER)
    with pytest.raises(NotFound):
        await revocation.revoke(store, "7b0e9a3c-0000-4000-8000-000000000000", "nhầm", OFFICER)
    with pytest.raises(InvalidArgument, match="UUID"):
        await revocation.suspend(store, "not-a-uuid", "nhầm", OFFICER)
    issued = await issued_dossier()
    with pytest.raises(InvalidArgument, match="reason"):
        await revocation.revoke(store, issued.id, "   ", OFFICER)
    with pytest.raises(InvalidArgument, match="500"):
        await revocation.revoke(store, issued.id, "x" * 501, OFFICER)


async def test_parallel_revocations_of_twenty_dossiers_all_reach_the_list(
    store: PostgresStatusStore, issued_dossier: MakeDossier, http: httpx.AsyncClient, issuer: str,
    owner_pool: asyncpg.Pool,
) -> None:  # fmt: skip
    dossiers = [await issued_dossier() for _ in range(20)]
    before = await owner_pool.fetchval("SELECT version FROM issuance.status_lists WHERE list_id = 0") or 0
    results = await asyncio.gather(
        *(revocation.revoke(store, dossier.id, f"thu hồi {n}", OFFICER) for n, dossier in enumerate(dossiers))
    )
    assert results == [CredentialStatus.REVOKED] * 20
    after = await owner_pool.fetchval("SELECT version FROM issuance.status_lists WHERE list_id = 0")
    assert after >= before + 20  # one version a change (the issuance service may rebuild too)
    token = (await served_list(http, issuer)).text
    verified = verify_status_list(token, await issuer_jwks(http, issuer), uri=f"{issuer}/statuslists/0",
                                  at=datetime.now(UTC))  # fmt: skip
    assert [verified.status_list.status(d.status_index) for d in dossiers] == [Status.INVALID] * 20


async def test_parallel_changes_of_one_dossier_apply_once(
    store: PostgresStatusStore, issued_dossier: MakeDossier
) -> None:
    dossier = await issued_dossier()
    outcomes = await asyncio.gather(
        *(revocation.revoke(store, dossier.id, "thu hồi", OFFICER) for _ in range(8)), return_exceptions=True
    )
    assert outcomes.count(CredentialStatus.REVOKED) == 1
    assert all(isinstance(o, FailedPrecondition) for o in outcomes if o is not CredentialStatus.REVOKED)


async def test_the_served_token_is_a_statuslist_jwt_of_the_issuer(
    store: PostgresStatusStore, http: httpx.AsyncClient, issuer: str, issuer_key: SigningKey
) -> None:
    await revocation.publish_initial(store)
    response = await served_list(http, issuer)
    assert response.headers["content-type"] == "application/statuslist+jwt"
    assert response.headers["cache-control"] == "public, max-age=300"
    header = json.loads(b64url_decode(response.text.split(".")[0]))
    assert header == {"alg": "ES256", "kid": issuer_key.kid, "typ": "statuslist+jwt"}
    claims = json.loads(b64url_decode(response.text.split(".")[1]))
    assert (claims["iss"], claims["sub"], claims["ttl"]) == (issuer, f"{issuer}/statuslists/0", 300)
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert claims["status_list"]["bits"] == 2
    jwks = await issuer_jwks(http, issuer)
    assert issuer_key.kid in [key["kid"] for key in jwks["keys"]]  # type: ignore[index]
    assert all("d" not in key for key in jwks["keys"])  # type: ignore[union-attr]
    verified = verify_status_list(response.text, jwks, uri=f"{issuer}/statuslists/0", at=datetime.now(UTC))
    size = verified.status_list.size
    assert size >= 1024
    assert size % 8 == 0
    with pytest.raises(InvalidArgument, match="typ"):  # a token of another type does not pass as a list
        verify_status_list(response.text.replace(response.text.split(".")[0], "eyJhbGciOiJFUzI1NiJ9"), jwks,
                           uri=f"{issuer}/statuslists/0", at=datetime.now(UTC))  # fmt: skip


async def test_an_unknown_status_list_is_404_with_a_json_body(http: httpx.AsyncClient, issuer: str) -> None:
    for path in ("/statuslists/7", "/statuslists/abc", "/statuslists/99999999999999"):
        response = await http.get(issuer + path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
    assert (await http.get(f"{issuer}/.well-known/jwt-vc-issuer/elsewhere")).status_code == 404


async def test_the_list_covers_every_index_handed_out_and_a_restart_keeps_what_was_revoked(
    store: PostgresStatusStore, issued_dossier: MakeDossier, owner_pool: asyncpg.Pool, issuer: str,
    issuer_key: SigningKey,
) -> None:  # fmt: skip
    dossier = await issued_dossier()
    await revocation.revoke(store, dossier.id, "thu hồi", OFFICER)
    highest = await owner_pool.fetchval("SELECT last_value FROM issuance.status_indexes")
    published = await revocation.publish_initial(store)  # as on the issuance service's next start
    assert published.size > highest
    assert published.size % 1024 == 0
    verified = verify_status_list(published.token, issuer_key.jwks(), uri=f"{issuer}/statuslists/0",
                                  at=datetime.now(UTC))  # fmt: skip
    assert verified.status_list.status(dossier.status_index) is Status.INVALID
    version = published.version
    await revocation.cover(store, published.size - 1)  # covered: nothing rebuilt
    assert (await store.published()).version == version  # type: ignore[union-attr]
    await revocation.cover(store, published.size)  # beyond: rebuilt, longer
    grown = await store.published()
    assert grown is not None
    assert grown.version > version
    assert grown.size > published.size


async def test_the_document_signing_chain_is_served(
    http: httpx.AsyncClient, issuer: str, owner_pool: asyncpg.Pool, stack: object
) -> None:
    chains = await owner_pool.fetch("SELECT chain_pem FROM issuance.issuer_keys WHERE use = 'document'")
    if not any(row["chain_pem"].strip() for row in chains):  # until the issuance service writes its own
        pem = await asyncio.to_thread(Path(stack.ca.issue("issuance").ca).read_text)  # type: ignore[attr-defined]
        await owner_pool.execute(
            "INSERT INTO issuance.issuer_keys (kid, use, public_jwk, chain_pem)"
            " VALUES ('sta-document-fixture', 'document', '{}'::jsonb, $1) ON CONFLICT (kid) DO NOTHING",
            pem,
        )
        chains = await owner_pool.fetch("SELECT chain_pem FROM issuance.issuer_keys WHERE use = 'document'")
    response = await http.get(f"{issuer}/issuance/document-ca.pem")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/pem-certificate-chain")
    served = x509.load_pem_x509_certificates(response.content)
    stored = [c for row in chains if row["chain_pem"].strip() for c in x509.load_pem_x509_certificates(
        row["chain_pem"].encode())]  # fmt: skip
    assert served
    assert {c.fingerprint(hashes.SHA256()) for c in served} == {
        c.fingerprint(hashes.SHA256()) for c in stored if c.subject == c.issuer
    }  # the roots of the chain, never the signer's own certificate
    assert "PRIVATE KEY" not in response.text


async def test_a_verifier_asking_for_the_cwt_form_is_told_it_is_not_served(
    http: httpx.AsyncClient, issuer: str
) -> None:
    asked = await http.get(f"{issuer}/statuslists/0", headers={"Accept": "application/statuslist+cwt"})
    assert asked.status_code == 406
    assert asked.json()["error"] == "not_acceptable"
    accept = "application/statuslist+cwt, application/statuslist+jwt;q=0.5"
    either = await http.get(f"{issuer}/statuslists/0", headers={"Accept": accept})
    assert either.status_code == 200
    assert either.headers["access-control-allow-origin"] == "*"  # a browser wallet may fetch it


async def test_the_refresher_re_signs_a_list_only_once_it_grew_old(store: PostgresStatusStore) -> None:
    first = await revocation.publish_initial(store)
    stop = revocation.start_refresher(store, every=0.05)  # rounds on a fresh list change nothing
    await asyncio.sleep(0.5)
    await stop()
    kept = await store.published()
    assert kept is not None
    assert kept.version == first.version
    now = datetime.now(UTC)
    renewed = await store.rebuild(now, older_than=now)  # a list built before the limit is re-signed
    assert renewed is not None
    assert renewed.version > first.version
    assert renewed.built_at == now
