"""``dinhdanh bench issuance``: criminal-record certificates end to end, and offline QR verifications.

Prepared beforehand, not measured: bench citizens (``bench.accounts``: activated with TOTP, kept in
``var/secrets``) whose seeded judicial record is clean (no row in ``judicial.convictions``, so the auto-approval
policy approves them), raised to assurance level 2 (``Identity.SetAssuranceLevel`` as the operator, what
`dinhdanh accounts verify-in-person` does) and signed in to the demo portal client for the issuance service
(scope ``issuance.apply``, resource ``urn:dinhdanh:service:issuance``, acr 2).

Measured, the load generator on the same machine as the stack:

* **dossiers end to end**: ``concurrency`` applicants each in a loop for ``seconds``: ``Certificates.Apply`` (Form
  No. 1, electronic delivery, a fresh ``request_id``) → auto-approval → the issuing worker's SD-JWT VC, PDF,
  PAdES signature and QR → ``DeliverIssuedDocument`` into the vault, observed by polling ``GetMyDossier`` every
  :data:`POLL` seconds until it is ISSUED with its ``vault_document_id``. Dossiers per second (those completed,
  over the time from the first Apply until the last one finished), p50/p99 of Apply → in the vault; the dossiers
  still open when the time is up are waited for (up to :data:`DRAIN`) and counted in; errors by gRPC code;
  :data:`WARM_UP` dossiers go through first, unmeasured (the issuing worker's processes start on first use);
  the CPU the issuance service (with its builder processes) and the vault spent a dossier, from /proc, so the
  figure means something on a machine other work shares;
* **offline QR verifications per second**, in-process: ``issuance.qr.QrVerifier.verify`` alone, and
  ``issuance.verify.verify_presented`` (prefix, Base45, zlib, COSE_Sign1 ES256 and the status list entry) on a
  QR the same as a certificate's.

It prints figures and never asserts them: the targets (60 dossiers a second on this 2-core machine, at least
1,000 QR verifications a second) are printed beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import psutil

from bench.accounts import ACCOUNTS_FILE, AccountPool, save_accounts
from bench.browserless import Browser, SignIn, sign_in
from bench.stats import Tally
from issuance import qr
from issuance.issuer_keys import SigningKey
from issuance.status_list import StatusList, sign_status_list
from issuance.verify import verify_presented
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from stack.info import StackInfo
from stack.provision import activate_with_totp

ISSUANCE = "urn:dinhdanh:service:issuance"
POLL = 0.25  # seconds between GetMyDossier calls of one applicant (each costs the service CPU too)
DRAIN = 120.0  # seconds to wait for the dossiers still open when the time is up
TIMEOUT = 30.0
WARM_UP = 4  # dossiers issued before measuring
TARGET_DOSSIERS = 60.0
TARGET_QR = 1000.0
LEVEL_NOTE = "bench issuance: verified in person (benchmark citizen)"
ISSUER = "https://dinhdanh.example/issuers/lltp"
STATUS_URI = "https://dinhdanh.example/statuslists/lltp/0"


def answers() -> pb.Answers:
    """Form No. 1 for a job, one copy, electronic: what most of the national portal's dossiers ask."""
    return pb.Answers(form=1, purpose="EMPLOYMENT", copies=1, delivery=pb.DELIVERY_ELECTRONIC,
                      ban_certification=False, email="bench@example.vn")  # fmt: skip


async def clean(info: StackInfo, id_numbers: list[str]) -> list[str]:
    """Those of ``id_numbers`` with no conviction on record (the auto-approval policy approves them)."""
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT id_number FROM judicial.convictions WHERE id_number = ANY($1::text[])", id_numbers
        )
    finally:
        await conn.close()
    convicted = {row["id_number"] for row in rows}
    return [n for n in id_numbers if n not in convicted]


async def _clean_without_account(info: StackInfo, count: int) -> list[str]:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.id_number FROM registry.citizens c LEFT JOIN identity.accounts a USING (id_number)"
            " WHERE a.id_number IS NULL AND NOT EXISTS"
            " (SELECT 1 FROM judicial.convictions j WHERE j.id_number = c.id_number)"
            " ORDER BY c.id_number LIMIT $1",
            count,
        )
    finally:
        await conn.close()
    return [row["id_number"] for row in rows]


async def clean_accounts(info: StackInfo, folder: Path, count: int) -> list[dict[str, str]]:
    """``count`` bench accounts (``bench.accounts``' file) of citizens with a clean record, activating more one
    at a time when needed: identity admits one activation at a time from a device (RESOURCE_EXHAUSTED, retried)."""
    path = folder / ACCOUNTS_FILE
    known: list[dict[str, str]] = json.loads(path.read_text()) if path.exists() else []
    usable = set(await clean(info, [a["id_number"] for a in known]))
    chosen = [a for a in known if a["id_number"] in usable][:count]
    if len(chosen) >= count:
        return chosen
    fresh: list[dict[str, str]] = []
    password = "Bench-issuance-" + uuid.uuid4().hex[:8]
    async with info.channel("registry") as registry, info.channel("identity") as identity:
        for id_number in await _clean_without_account(info, count - len(chosen)):
            for attempt in range(30):
                try:
                    secret = await activate_with_totp(registry, identity, id_number, password)
                    break
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt == 29:
                        raise
                    await asyncio.sleep(1.1)
            fresh.append({"id_number": id_number, "password": password, "totp_secret": secret})
    save_accounts(folder, fresh)
    return chosen + fresh


async def level_2(info: StackInfo, id_numbers: list[str]) -> None:
    async with info.channel("identity") as channel:
        identity = igrpc.IdentityStub(channel)
        for id_number in id_numbers:
            account = await identity.GetAccount(ipb.GetAccountRequest(id_number=id_number), timeout=10)
            if account.assurance_level < 2:
                request = ipb.SetAssuranceLevelRequest(id_number=id_number, level=2, note=LEVEL_NOTE)
                await identity.SetAssuranceLevel(request, timeout=10)


async def applicants(info: StackInfo, secrets_folder: Path, count: int) -> list[str]:
    """Access tokens of ``count`` clean, level-2 bench citizens for the issuance service."""
    chosen = await clean_accounts(info, secrets_folder, count)
    await level_2(info, [a["id_number"] for a in chosen])
    portal = info.clients["portal"]
    flow = SignIn(info.oidc_issuer, portal["client_id"], portal["client_secret"], portal["redirect_uris"][0],
                  scope="openid issuance.apply", extra={"resource": ISSUANCE})  # fmt: skip
    pool = AccountPool(chosen)
    tokens: list[str] = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        for _ in chosen:
            account = pool.take()
            while account is None:  # every one signed in during this TOTP step
                await asyncio.sleep(1.0)
                account = pool.take()
            params = await sign_in(Browser(http), flow, account["id_number"], account["password"],
                                   AccountPool.code(account))  # fmt: skip
            if "code" not in params:
                raise RuntimeError(f"bench sign-in did not reach the redirect: {sorted(params)}")
            reply = await flow.redeem(http, params["code"], params["_verifier"])
            if reply.status_code != 200:
                raise RuntimeError(f"token request refused: {reply.status_code} {reply.text[:200]}")
            tokens.append(str(reply.json()["access_token"]))
    save_accounts(secrets_folder, chosen)
    return tokens


def listening(address: str) -> psutil.Process | None:
    """The process listening on ``address``'s port (this stack's service; other stacks may run beside)."""
    port = int(address.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                return psutil.Process(conn.pid)
    return None


def cpu_seconds(proc: psutil.Process | None) -> float:
    """User + system CPU seconds of ``proc`` and its living children (the issuing worker's builder processes)."""
    if proc is None:
        return 0.0
    total = 0.0
    for one in (proc, *proc.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = one.cpu_times()
            total += times.user + times.system
    return total


async def dossiers(info: StackInfo, tokens: list[str], seconds: float, concurrency: int) -> dict[str, Any]:
    """``concurrency`` applicants Apply → ISSUED in the vault in a loop for ``seconds`` (see the module docstring)."""
    holder = json.dumps(SigningKey.generate().public_jwk)
    tally = Tally()
    statuses: dict[str, int] = {}
    async with info.channel("issuance") as channel:
        certificates = pb_grpc.CertificatesStub(channel)

        async def one(token: str) -> None:
            metadata = (("authorization", f"Bearer {token}"),)
            request = pb.ApplyRequest(request_id=str(uuid.uuid4()), answers=answers(), holder_jwk=holder)
            started = time.perf_counter()
            dossier = await certificates.Apply(request, metadata=metadata, timeout=TIMEOUT)
            ask = pb.DossierRequest(id=dossier.id)
            give_up = started + DRAIN
            while not (dossier.status == pb.DOSSIER_STATUS_ISSUED and dossier.vault_document_id):
                if dossier.status == pb.DOSSIER_STATUS_REJECTED or time.perf_counter() > give_up:
                    name = pb.DossierStatus.Name(dossier.status)
                    statuses[name] = statuses.get(name, 0) + 1
                    tally.error(f"ended {name}")
                    return
                await asyncio.sleep(POLL)
                dossier = await certificates.GetMyDossier(ask, metadata=metadata, timeout=TIMEOUT)
            tally.latencies.append(time.perf_counter() - started)

        async def applicant(index: int, deadline: float) -> None:
            token = tokens[index % len(tokens)]
            while time.perf_counter() < deadline:
                try:
                    await one(token)
                except grpc.aio.AioRpcError as error:
                    tally.error(error.code().name)
                    await asyncio.sleep(POLL)

        # warm-up, not measured: the issuing worker's processes start, import and parse their fonts on first use
        await asyncio.gather(*(one(tokens[i % len(tokens)]) for i in range(min(concurrency, WARM_UP))))
        tally.latencies.clear()
        watched = {name: listening(info.services[name]) for name in ("issuance", "vault")}
        before = {name: cpu_seconds(proc) for name, proc in watched.items()}
        start = time.perf_counter()
        await asyncio.gather(*(applicant(i, start + seconds) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
        used = {name: cpu_seconds(proc) - before[name] for name, proc in watched.items()}
    summary = tally.summary(elapsed)
    return {
        "dossiers_per_second": summary["per_second"],
        "dossiers": summary["count"],
        "p50_apply_to_vault_ms": summary["p50_ms"],
        "p99_apply_to_vault_ms": summary["p99_ms"],
        "elapsed_s": round(elapsed, 1),
        "errors": summary["errors"],
        "cpu_ms_per_dossier": {
            name: round(seconds_used * 1000 / max(1, int(summary["count"])), 1) for name, seconds_used in used.items()
        },
        "target_dossiers_per_second": TARGET_DOSSIERS,
    }


def qr_verifications(seconds: float) -> dict[str, Any]:
    """Offline QR verifications a second, in-process: the QR verifier alone, and ``issuance.verify`` with the
    status list entry checked."""
    key = SigningKey.generate()
    at = datetime.now(UTC)
    fields = qr.QrFields(qr.DOC_CRIMINAL_RECORD_1, "Nguyễn Văn An", "2345", 0, date(2026, 12, 1), "LLTP-2026-000001",
                         17, STATUS_URI)  # fmt: skip
    text = qr.encode_qr(key, fields, issuer=ISSUER, issued_at=at)
    status = sign_status_list(key, StatusList.new(1024, 2), uri=STATUS_URI, at=at, issuer=ISSUER)
    jwks = key.jwks()
    verdict = verify_presented(text, issuer_jwks=jwks, status_lists=[status], at=at)
    if not verdict.valid or not verdict.status_checked:
        raise RuntimeError(f"the bench QR does not verify: {verdict.reason}")
    count, start = 0, time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        verify_presented(text, issuer_jwks=jwks, status_lists=[status], at=at)
        count += 1
    full = count / (now - start)
    return {
        "qr_verifications_per_second": round(qr.verifications_per_second(seconds)),
        "verify_with_status_per_second": round(full),
        "qr_characters": len(text),
        "target_qr_per_second": TARGET_QR,
    }


async def run(info: StackInfo, var: Path, seconds: float, concurrency: int, qr_seconds: float) -> dict[str, Any]:
    offline = await asyncio.to_thread(qr_verifications, qr_seconds)
    tokens = await applicants(info, var / "secrets", max(2, min(concurrency, 16)))
    online = await dossiers(info, tokens, seconds, concurrency)
    load = [round(x, 1) for x in os.getloadavg()]
    return {**online, **offline, "concurrency": concurrency, "seconds": seconds, "load_average_1_5_15": load}
