"""The access history as a transparency log, against the real stack (issue 10 items 6 and 7).

audit.events feeds the log: sign-ins (identity), vault accesses (vault) and any other event land as leaves,
in batches (one transaction each), with tiles in S3 served by the edge and checkpoints signed with the log key.
Citizens list their own entries with inclusion proofs; checkpoints are consistent; tampering is caught offline.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest

from audit import checkpoint as notes
from audit import merkle, tiles, verify
from audit.events import AuditEvent, PostgresAuditLog, Pseudonymizer
from audit.sequencer import Signer
from bench.browserless import sign_in
from core.keys import purposes
from protos.audit.v1 import log_pb2 as pb
from protos.audit.v1 import log_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.seaweed import LOG_BUCKET
from stack.supervisor import Stack
from tests.conftest import channel_as, own_stack
from tests.oidc_helpers import person, portal_flow, signed_in
from tests.test_cli import dinhdanh
from tests.vault_helpers import PDF, VAULT, bearer, download, upload
from tests.waiting import log_events, until

LOG = "urn:dinhdanh:service:log"
CONSENT = "urn:dinhdanh:service:consent"
ORIGIN = "dinhdanh.gov.vn/log"


async def tokens(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen) -> tuple[str, str]:
    """The citizen's vault token and log token: one sign-in (password, TOTP), then SSO for the second."""
    found = await audience_tokens(http, info, citizen, {VAULT: "vault.read vault.write", LOG: "log.read"})
    return found[VAULT], found[LOG]


async def audience_tokens(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen,
                          scopes: dict[str, str]) -> dict[str, str]:  # fmt: skip
    """One access token per resource (``scopes``: resource → scope): one sign-in, then SSO for the others."""
    who = await person(info, citizen)
    found: dict[str, str] = {}
    browser = None
    for resource, scope in scopes.items():
        flow = portal_flow(info, scope=f"openid {scope}", resource=resource)
        if browser is None:
            browser, params = await signed_in(http, flow, who)
        else:
            params = await sign_in(browser, flow, who.id_number, who.password, "000000")  # SSO: no TOTP asked
        reply = await flow.redeem(http, params["code"], params["_verifier"])
        assert reply.status_code == 200, reply.text
        found[resource] = reply.json()["access_token"]
    return found


@pytest.fixture(scope="module")
async def log(stack: Stack) -> AsyncIterator[pb_grpc.LogStub]:
    async with channel_as(stack, "log", "portal") as channel:
        yield pb_grpc.LogStub(channel)


@pytest.fixture(scope="module")
async def vkey(http: httpx.AsyncClient, info: StackInfo) -> str:
    reply = await http.get(f"{info.oidc_issuer}/log/key")
    assert reply.status_code == 200, reply.text
    return reply.text.strip()


def refs(stack: Stack) -> Pseudonymizer:
    return Pseudonymizer(stack.secrets.keys("log").key(purposes.AUDIT_PSEUDONYM))


async def append_events(info: StackInfo, events: list[AuditEvent]) -> None:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    try:
        audit = PostgresAuditLog(pool)
        await asyncio.gather(*(audit.append(e) for e in events))  # group commit: a few INSERTs
    finally:
        await pool.close()


async def sequenced(info: StackInfo) -> int:
    """Wait until every event so far is in a published checkpoint; the checkpoint's size."""

    async def covered() -> int | None:
        conn = await asyncpg.connect(info.postgres_dsn)
        try:
            events = await conn.fetchval("SELECT count(*) FROM audit.events")
            size = await conn.fetchval("SELECT coalesce(max(size), 0) FROM tlog.checkpoints")
        finally:
            await conn.close()
        return size if size >= events and events > 0 else None

    return int(await until(covered, "every audit event is in a checkpoint", timeout=60, every=0.2))


def verified_entries(reply: pb.ListMyEntriesResponse, vkey: str) -> list[dict[str, Any]]:
    """Every entry's leaf hashed and proven against the response's checkpoint, verified with the key alone."""
    cp = verify.checkpoint(reply.checkpoint.note, verify.Key.parse(vkey), ORIGIN)
    assert cp.size == reply.checkpoint.size
    fields = []
    for entry in reply.entries:
        claim = {"index": entry.index, "tree_size": entry.proof.tree_size,
                 "leaf": base64.b64encode(entry.leaf).decode(),
                 "hashes": [base64.b64encode(h).decode() for h in entry.proof.hashes]}  # fmt: skip
        assert verify.inclusion(claim, cp) == entry.index
        fields.append(json.loads(entry.leaf))
    return fields


async def test_sign_ins_and_vault_accesses_are_entries_with_proofs(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, vault: Any, log: pb_grpc.LogStub, vkey: str,
    fresh_citizens: Any,
) -> None:  # fmt: skip
    citizen = next(fresh_citizens)
    vault_token, log_token = await tokens(http, info, citizen)
    stored = await upload(vault, vault_token, [PDF], title="Giấy khai sinh của Nguyễn Văn An")
    await download(vault, vault_token, stored.id)
    await sequenced(info)
    reply = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=100), metadata=bearer(log_token), timeout=20)
    assert reply.pending == 0
    fields = verified_entries(reply, vkey)
    actions = [f["action"] for f in fields]
    assert {"identity.activate", "identity.password", "identity.authenticate"} <= set(actions)
    assert actions.index("vault.download") < actions.index("vault.upload")  # newest first
    assert [e.index for e in reply.entries] == sorted((e.index for e in reply.entries), reverse=True)
    download_entry = reply.entries[actions.index("vault.download")]
    assert download_entry.document_id == stored.id
    assert download_entry.agency_name  # the portal's registered name, from oidc.clients
    subject = refs(stack).ref(citizen.id_number)
    assert {f["subject"] for f in fields} == {subject}
    text = b"".join(e.leaf for e in reply.entries).decode()
    assert citizen.id_number not in text
    assert "Nguyễn" not in text
    assert "khai sinh" not in text
    assert set().union(*(f.keys() for f in fields)) <= {
        "v", "time", "actor", "action", "outcome", "subject", "client_id", "document_id", "version", "reason",
        "level", "retry_after", "purpose", "consent_id", "factor", "source",
    }  # fmt: skip
    small = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=2), metadata=bearer(log_token), timeout=20)
    rest = await log.ListMyEntries(
        pb.ListMyEntriesRequest(page_size=100, page_token=small.next_page_token), metadata=bearer(log_token), timeout=20
    )
    assert [e.index for e in small.entries] + [e.index for e in rest.entries] == [e.index for e in reply.entries]


async def test_another_citizens_entries_never_appear(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, log: pb_grpc.LogStub, fresh_citizens: Any
) -> None:
    first, second = next(fresh_citizens), next(fresh_citizens)
    _, first_log = await tokens(http, info, first)
    _, second_log = await tokens(http, info, second)
    await sequenced(info)
    a = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=100), metadata=bearer(first_log), timeout=20)
    b = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=100), metadata=bearer(second_log), timeout=20)
    assert a.entries
    assert b.entries
    assert not {e.index for e in a.entries} & {e.index for e in b.entries}
    assert {json.loads(e.leaf)["subject"] for e in b.entries} == {refs(stack).ref(second.id_number)}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await log.ListMyEntries(pb.ListMyEntriesRequest(), timeout=10)  # a peer without a citizen token
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_events_are_sequenced_in_batches_of_one_transaction(info: StackInfo, stack: Stack) -> None:
    skip = len((stack.var / "logs" / "log.log").read_text().splitlines())
    conn = await asyncpg.connect(info.postgres_dsn)
    try:  # 2,500 events committed in one statement: all visible at once
        await conn.execute(
            "INSERT INTO audit.events (actor, action, outcome, detail)"
            " SELECT 'service:test', 'test.batch', 'success', jsonb_build_object('version', g)"
            " FROM generate_series(1, 2500) g"
        )
    finally:
        await conn.close()
    await sequenced(info)
    batches = log_events(stack.var / "logs" / "log.log", skip, "log.batch")
    assert sum(b["count"] for b in batches) >= 2500
    assert max(b["count"] for b in batches) == 1000  # full batches: one transaction for 1,000 events
    assert len(batches) <= 6
    rows = await _rows(info, "SELECT count(*) AS n, count(DISTINCT event_id) AS d, max(idx) AS top FROM tlog.entries")
    assert rows[0]["n"] == rows[0]["d"] == rows[0]["top"] + 1  # dense indexes, each event once


async def _rows(info: StackInfo, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def test_the_edge_serves_tiles_and_checkpoint_read_only(http: httpx.AsyncClient, info: StackInfo) -> None:
    size = await sequenced(info)
    base = f"{info.oidc_issuer}/log"
    cp = await http.get(f"{base}/checkpoint")
    assert cp.status_code == 200
    assert cp.headers["content-type"] == "text/plain; charset=utf-8"
    assert "max-age=1" in cp.headers["cache-control"]
    assert int(cp.text.splitlines()[1]) >= size
    full = await http.get(f"{base}/tile/0/000")
    assert full.status_code == 200
    assert full.headers["content-type"] == "application/octet-stream"
    assert len(full.content) == 8192
    assert "immutable" in full.headers["cache-control"]
    bundle = await http.get(f"{base}/tile/entries/000")
    entries = tiles.parse_bundle(bundle.content, 256)
    assert [merkle.leaf_hash(e) for e in entries] == tiles.parse_tile(full.content, 256)
    width = int(cp.text.splitlines()[1]) % 256
    if width:
        partial = await http.get(f"{base}/tile/0/{tiles.encode_index(int(cp.text.splitlines()[1]) // 256)}.p/{width}")
        assert partial.status_code == 200
        assert "immutable" not in partial.headers["cache-control"]
    for bad in ("tile/0/../../vault", "tile/0/00", "tile/0/x000/001", "tile/99/000", "tile/0/000.p/256", "vkey",
                "tile/entries/999999", "tile/0/%2e%2e/000"):  # fmt: skip
        reply = await http.get(f"{base}/{bad}")
        assert reply.status_code == 404, bad


async def test_consistency_between_two_checkpoints_verifies(
    info: StackInfo, stack: Stack, log: pb_grpc.LogStub, vkey: str, tmp_path: Path
) -> None:
    await sequenced(info)
    old = await log.GetCheckpoint(pb.GetCheckpointRequest(), timeout=10)
    await append_events(info, [AuditEvent("service:test", "test.consistency", "success") for _ in range(300)])
    await until(lambda: _bigger(log, old.size), "a newer checkpoint", timeout=60)
    new = await log.GetCheckpoint(pb.GetCheckpointRequest(), timeout=10)
    proof = await log.GetConsistencyProof(pb.GetConsistencyProofRequest(old_size=old.size), timeout=10)
    key = verify.Key.parse(vkey)
    verify.consistency(verify.checkpoint(old.note, key), verify.checkpoint(new.note, key), list(proof.hashes))
    (tmp_path / "old").write_text(old.note)
    (tmp_path / "new").write_text(new.note)
    code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--consistency", str(tmp_path / "old"),
                         str(tmp_path / "new"))  # fmt: skip
    assert (code, out["verified"]) == (0, True), out
    # A forged history of the same size, signed with the log's own key, is not consistent with the old one.
    signer = Signer.from_seed(ORIGIN, stack.secrets.keys("log").key(purposes.LOG_SIGNING))
    forged = [merkle.leaf_hash(f"forged {i}".encode()) for i in range(new.size)]
    (tmp_path / "forged").write_text(signer.sign(new.size, merkle.root(forged)))
    code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--consistency", str(tmp_path / "old"),
                         str(tmp_path / "forged"))  # fmt: skip
    assert code == 1
    assert "does not extend" in out["error"]


async def _bigger(log: pb_grpc.LogStub, size: int) -> bool:
    return (await log.GetCheckpoint(pb.GetCheckpointRequest(), timeout=10)).size > size


async def test_a_downloaded_tile_set_verifies_and_a_tampered_tile_is_named(
    info: StackInfo, stack: Stack, vkey: str, tmp_path: Path
) -> None:
    await sequenced(info)
    code, out = dinhdanh(stack, "audit", "download", str(tmp_path / "log"))
    assert code == 0, out
    code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--tiles", str(tmp_path / "log"))
    assert (code, out["verified"]) == (0, True), out
    assert out["entries"] == out["size"]
    # The S3 object of the first full tile is altered (by whoever holds the log's write key): caught.
    assert stack.s3 is not None
    client = stack.s3.client()
    original = client.get_object(LOG_BUCKET, "tile/0/000").read()
    forged = bytes(32) + original[32:]
    client.put_object(LOG_BUCKET, "tile/0/000", io.BytesIO(forged), len(forged))
    try:
        code, out = dinhdanh(stack, "audit", "download", str(tmp_path / "tampered"))
        assert code == 0, out
        code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--tiles", str(tmp_path / "tampered"))
        assert code == 1
        assert out["error"].startswith("tile/0/000: the leaf hash of entry 0 does not match")
    finally:
        client.put_object(LOG_BUCKET, "tile/0/000", io.BytesIO(original), len(original))
    # A flipped bit in the checkpoint's signature: refused, naming the signature.
    note = (tmp_path / "log" / "checkpoint").read_text()
    text, _, signature = note.rpartition("— ")
    raw = bytearray(base64.b64decode(signature.split(" ")[1]))
    raw[10] ^= 1
    bad = f"{text}— {signature.split(' ')[0]} {base64.b64encode(bytes(raw)).decode()}\n"
    (tmp_path / "bad-checkpoint").write_text(bad)
    code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--checkpoint", str(tmp_path / "bad-checkpoint"))
    assert code == 1
    assert "signature" in out["error"]
    code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--checkpoint", str(tmp_path / "log" / "checkpoint"))
    assert (code, out["size"]) == (0, notes.parse_checkpoint(text.rstrip("\n") + "\n").size)


async def test_a_tampered_leaf_in_postgresql_is_caught(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, log: pb_grpc.LogStub, vkey: str, tmp_path: Path,
    fresh_citizens: Any,
) -> None:  # fmt: skip
    citizen = next(fresh_citizens)
    _, log_token = await tokens(http, info, citizen)
    await sequenced(info)
    reply = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=1), metadata=bearer(log_token), timeout=20)
    entry = reply.entries[0]
    forged = entry.leaf.replace(b'"outcome":"success"', b'"outcome":"failure"')
    assert forged != entry.leaf
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        await conn.execute("UPDATE tlog.entries SET leaf = $1 WHERE idx = $2", forged, entry.index)
        again = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=1), metadata=bearer(log_token), timeout=20)
        (tmp_path / "checkpoint").write_text(again.checkpoint.note)
        claim = {"index": again.entries[0].index, "tree_size": again.entries[0].proof.tree_size,
                 "leaf": base64.b64encode(again.entries[0].leaf).decode(),
                 "hashes": [base64.b64encode(h).decode() for h in again.entries[0].proof.hashes]}  # fmt: skip
        (tmp_path / "proof.json").write_text(json.dumps(claim))
        code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--checkpoint", str(tmp_path / "checkpoint"),
                             "--inclusion", str(tmp_path / "proof.json"))  # fmt: skip
        assert code == 1
        assert f"leaf {entry.index} is not in the tree" in out["error"]
        # Rewriting its leaf hash too does not help: the stored path no longer leads to the signed root.
        await conn.execute("UPDATE tlog.entries SET leaf_hash = $1 WHERE idx = $2", merkle.leaf_hash(forged),
                           entry.index)  # fmt: skip
        claim["leaf"] = base64.b64encode(forged).decode()
        (tmp_path / "proof.json").write_text(json.dumps(claim))
        code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--checkpoint", str(tmp_path / "checkpoint"),
                             "--inclusion", str(tmp_path / "proof.json"))  # fmt: skip
        assert code == 1
    finally:
        await conn.execute("UPDATE tlog.entries SET leaf = $1, leaf_hash = $2 WHERE idx = $3", entry.leaf,
                           merkle.leaf_hash(entry.leaf), entry.index)  # fmt: skip
        await conn.close()
    claim["leaf"] = base64.b64encode(entry.leaf).decode()
    (tmp_path / "proof.json").write_text(json.dumps(claim))
    code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--checkpoint", str(tmp_path / "checkpoint"),
                         "--inclusion", str(tmp_path / "proof.json"))  # fmt: skip
    assert (code, out["verified"]) == (0, True), out


async def test_a_shredded_citizens_entries_still_verify(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, vault: Any, log: pb_grpc.LogStub, vkey: str,
    tmp_path: Path, fresh_citizens: Any,
) -> None:  # fmt: skip
    citizen = next(fresh_citizens)
    vault_token, log_token = await tokens(http, info, citizen)
    stored = await upload(vault, vault_token, [PDF])
    await download(vault, vault_token, stored.id)
    await sequenced(info)
    code, out = dinhdanh(stack, "vault", "shred", citizen.id_number)
    assert (code, out["shredded"]) == (0, True), out
    await sequenced(info)
    reply = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=100), metadata=bearer(log_token), timeout=20)
    fields = verified_entries(reply, vkey)
    assert {"vault.upload", "vault.download"} <= {f["action"] for f in fields}
    code, out = dinhdanh(stack, "audit", "download", str(tmp_path / "log"))
    assert code == 0, out
    code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--tiles", str(tmp_path / "log"))
    assert (code, out["verified"]) == (0, True), out
    subject = refs(stack).ref(citizen.id_number)
    mine = [e for e in _all_entries(tmp_path / "log", out["size"]) if json.loads(e).get("subject") == subject]
    assert len(mine) >= 5  # activation, sign-in steps, upload, download: still in the verified tile set


def _all_entries(folder: Path, size: int) -> list[bytes]:
    out: list[bytes] = []
    for path in tiles.tile_set(size):
        if path.level is None:
            out += tiles.parse_bundle((folder / str(path)).read_bytes(), path.width)
    return out


async def test_inclusion_proofs_by_index_for_platform_peers(info: StackInfo, log: pb_grpc.LogStub, vkey: str) -> None:
    size = await sequenced(info)
    cp = verify.checkpoint(
        (await log.GetCheckpoint(pb.GetCheckpointRequest(), timeout=10)).note, verify.Key.parse(vkey)
    )
    for index in sorted({0, 1, size // 2, cp.size - 1}):
        proof = await log.GetInclusionProof(pb.GetInclusionProofRequest(index=index), timeout=10)
        assert merkle.verify_inclusion(proof.leaf_hash, index, cp.size, list(proof.hashes), cp.root_hash)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await log.GetInclusionProof(pb.GetInclusionProofRequest(index=cp.size + 10**6), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_batch_cut_by_a_postgresql_kill_leaves_no_half_and_resumes_exactly(tmp_path: Path) -> None:
    """SIGKILL of PostgreSQL while the sequencer works through 30,000 events: committed batches stay whole,
    the interrupted one leaves nothing, and once PostgreSQL is back every event is in the tree exactly once,
    at dense indexes, with tiles and checkpoint that verify offline."""
    said: list[str] = []
    async with own_stack(tmp_path / "var", 50) as stack:
        stack.say = said.append
        info = StackInfo.load(stack.info_path)
        stop = asyncio.Event()
        supervisor = asyncio.create_task(stack.supervise(stop))
        try:
            conn = await asyncpg.connect(info.postgres_dsn)
            try:
                await conn.execute(
                    "INSERT INTO audit.events (actor, action, outcome, detail)"
                    " SELECT 'service:test', 'test.kill', 'success', jsonb_build_object('version', g)"
                    " FROM generate_series(1, 30000) g"
                )
                await until(lambda: _size_over(conn, 3000), "the sequencer under way", timeout=60, every=0.05)
            finally:
                await conn.close()
            assert stack.postgres is not None
            assert stack.postgres.process is not None
            os.kill(stack.postgres.process.pid or 0, signal.SIGKILL)
            await until(lambda: any("PostgreSQL restarted" in m for m in said), "PostgreSQL back", timeout=90)
            size = await sequenced(info)
            rows = await _rows(
                info,
                "SELECT (SELECT count(*) FROM audit.events) AS events, count(*) AS n, count(DISTINCT event_id) AS d,"
                " max(idx) AS top, (SELECT count(*) FROM tlog.nodes) AS nodes FROM tlog.entries",
            )
            row = rows[0]
            assert row["events"] == row["n"] == row["d"] == row["top"] + 1 == size
            assert row["nodes"] == sum(size >> level for level in range(1, size.bit_length()))
            assert any(
                e["error_type"] for e in log_events(stack.var / "logs" / "log.log", 0, "log.sequencer_interrupted")
            )
            vkey = (await _get_text(info, "/log/key")).strip()
            code, out = dinhdanh(stack, "audit", "download", str(tmp_path / "log"))
            assert code == 0, out
            code, out = dinhdanh(stack, "audit", "verify", "--key", vkey, "--tiles", str(tmp_path / "log"))
            assert (code, out["verified"]) == (0, True), out
            assert out["entries"] >= 30000
        finally:
            stop.set()
            await supervisor


async def _size_over(conn: asyncpg.Connection, size: int) -> bool:
    return int(await conn.fetchval("SELECT size FROM tlog.state")) > size


async def _get_text(info: StackInfo, path: str) -> str:
    async with httpx.AsyncClient(timeout=20) as client:
        reply = await client.get(f"{info.oidc_issuer}{path}")
    assert reply.status_code == 200, reply.text
    return reply.text


async def test_consent_transitions_and_agency_fetches_are_entries(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, vault: Any, log: pb_grpc.LogStub, vkey: str,
    fresh_citizens: Any,
) -> None:  # fmt: skip
    """Request → approve → agency fetch → revoke → refused fetch: each is an entry of the citizen's history,
    with the agency's name, the purpose and the refusal's reason, and each proof verifies."""
    from protos.consent.v1 import consent_pb2 as cpb
    from protos.consent.v1 import consent_pb2_grpc as cgrpc
    from tests.consent_agency_helpers import PURPOSE, DemoAgency, terms

    citizen = next(fresh_citizens)
    found = await audience_tokens(http, info, citizen, {VAULT: "vault.read vault.write",
                                                        CONSENT: "consent.manage", LOG: "log.read"})  # fmt: skip
    stored = await upload(vault, found[VAULT], [PDF])
    agency = DemoAgency.of(info)
    record = await agency.request_consent(info, citizen.id_number, terms([stored.id]))
    async with channel_as(stack, "consent", "portal") as channel:
        consents = cgrpc.ConsentStub(channel)
        await consents.Approve(cpb.ConsentIdRequest(id=record.id), metadata=bearer(found[CONSENT]), timeout=20)
        token = await agency.token(info, record.id)
        async with agency.vault(info) as agency_vault:
            await agency.download(agency_vault, token, stored.id)
            await consents.Revoke(cpb.ConsentIdRequest(id=record.id), metadata=bearer(found[CONSENT]), timeout=20)
            with pytest.raises(grpc.aio.AioRpcError):
                await agency.download(agency_vault, token, stored.id)
    await sequenced(info)
    reply = await log.ListMyEntries(pb.ListMyEntriesRequest(page_size=100), metadata=bearer(found[LOG]), timeout=20)
    fields = verified_entries(reply, vkey)
    consent_entries = [(e, f) for e, f in zip(reply.entries, fields, strict=True) if f.get("consent_id") == record.id]
    actions = [(f["action"], f["outcome"]) for _, f in consent_entries]
    assert actions[-1][0].startswith("consent.")  # the request, oldest
    assert ("consent.fetch", "success") in actions
    assert any(action == "consent.fetch" and outcome == "refused" for action, outcome in actions)
    assert actions.index(("consent.fetch", "success")) > min(
        i for i, (action, outcome) in enumerate(actions) if action == "consent.fetch" and outcome == "refused"
    )  # newest first: the refusal came after the fetch
    assert len({a for a, _ in actions}) >= 4  # request, approve, fetch, revoke
    for entry, _value in consent_entries:
        assert entry.purpose == PURPOSE
        assert entry.agency_name == agency.name
    refused = next(e for e, f in consent_entries if f["action"] == "consent.fetch" and f["outcome"] == "refused")
    assert refused.reason


def test_the_edge_s3_pair_only_reads_the_log_bucket(stack: Stack) -> None:
    """Least privilege: the pair the edge is given reads the log's bucket, writes nothing, reads no document."""
    from minio import Minio
    from minio.error import S3Error

    from stack.seaweed import log_reader_keys

    assert stack.s3 is not None
    access, secret = log_reader_keys(stack.s3.access_key, stack.s3.secret_key)
    reader = Minio(stack.s3.endpoint, access_key=access, secret_key=secret, secure=False)
    assert reader.get_object(LOG_BUCKET, "checkpoint").read().startswith(ORIGIN.encode())
    with pytest.raises(S3Error):
        reader.put_object(LOG_BUCKET, "checkpoint", io.BytesIO(b"forged"), 6)
    with pytest.raises(S3Error):
        list(reader.list_objects("vault"))
    from stack.seaweed import log_writer_keys

    access_w, secret_w = log_writer_keys(stack.s3.access_key, stack.s3.secret_key)
    writer = Minio(stack.s3.endpoint, access_key=access_w, secret_key=secret_w, secure=False)
    writer.put_object(LOG_BUCKET, "probe-writer", io.BytesIO(b"ok"), 2)  # the log's own pair: its bucket only
    writer.remove_object(LOG_BUCKET, "probe-writer")
    with pytest.raises(S3Error):
        list(writer.list_objects("vault"))
    edge = stack.services["edge"].pid
    environ = dict(
        item.split("=", 1) for item in Path(f"/proc/{edge}/environ").read_text().split("\0") if "=" in item
    )  # the edge process was handed the reader pair, not the platform's
    assert environ["DINHDANH_S3_ACCESS_KEY"] == access
    assert stack.s3.secret_key not in environ.values()


async def test_a_second_sequencer_stands_by_while_one_leads(info: StackInfo, stack: Stack) -> None:
    """Several log replicas are safe: a sequencer that cannot take the advisory lock writes nothing."""
    from audit.leaves import LeafBuilder
    from audit.sequencer import Sequencer

    class Refusing:
        async def put(self, name: str, data: bytes, content_type: str) -> None:
            raise AssertionError("a standby sequencer wrote to S3")

    seed = stack.secrets.keys("log").key(purposes.LOG_SIGNING)
    standby = Sequencer(info.postgres_dsn, Refusing(), LeafBuilder(refs(stack)), Signer.from_seed(ORIGIN, seed))
    stopping = asyncio.Event()
    task = asyncio.create_task(standby.run_forever(stopping))
    try:
        await append_events(info, [AuditEvent("service:test", "test.standby", "success")])
        await sequenced(info)  # the service's sequencer took it
        await asyncio.sleep(1.5)
        assert not standby.leader.is_set()
    finally:
        stopping.set()
        await task


LOG_ROLE_REFUSED = [
    "UPDATE tlog.entries SET leaf = leaf",  # append-only for its own writer too
    "DELETE FROM tlog.entries",
    "UPDATE tlog.nodes SET hash = hash",
    "DELETE FROM tlog.checkpoints",
    "INSERT INTO audit.events (actor, action, outcome) VALUES ('x', 'y', 'z')",  # it reads the events only
    "DELETE FROM audit.events",
    "SELECT FROM vault.documents",
    "SELECT FROM identity.accounts",
    "SELECT FROM registry.citizens",
    "SELECT secret_hash FROM oidc.clients",
    "SELECT FROM consent.consents",
]


@pytest.mark.parametrize("statement", LOG_ROLE_REFUSED)
async def test_the_log_role_cannot_rewrite_its_history_or_read_citizens(stack: Stack, statement: str) -> None:
    env = stack.services["log"].env
    assert env is not None
    connection = await asyncpg.connect(env["DINHDANH_POSTGRES_DSN"])
    try:
        assert await connection.fetchval("SELECT current_user") == "dinhdanh_log"
        await connection.execute("SELECT FROM audit.events LIMIT 1")
        await connection.execute("SELECT client_id, name FROM oidc.clients LIMIT 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(statement)
    finally:
        await connection.close()
