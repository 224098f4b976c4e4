"""``dinhdanh bench consent``: an agency's fetches of a shared 100 KiB document beside the citizen's own download.

Against the running stack (``var/stack.json``), the load generator on the same machine:
- a bench citizen signs in once (a bench portal client asking for the vault and the consent service: one token,
  two audiences), uploads a 100 KiB document and grants the stack's demo agency (``clients["agency_demo"]``)
  consents for it through the consent service (``GrantConsent``);
- the agency gets one certificate-bound consent token per consent at the edge's mTLS token endpoint (RFC 8705 §5
  alias, ``client_credentials`` with RFC 9396 ``authorization_details``, ``tls_client_auth``): the agency client
  library's calls (``agency/client.py``), as for its ``DownloadShared``;
- the agency's ``DownloadShared`` over its own certificate with ``concurrency`` calls in flight: mutual TLS, the
  bound token's checks, the consent's check and counter update (one row-locked transaction), the audit row, S3
  read and decryption; and the citizen's plain ``Download`` of the same document, same concurrency: ``seconds``
  each, run in alternating slices of ``SLICE`` seconds so that both see the same load of the machine (other
  processes on it come and go);
- fetches/s, p50/p99 for each, and the ratio agency/citizen (target ≥ 0.8; 500 fetches a second, p99 < 50 ms).

An artefact allows at most 1,000 fetches and 100 per calendar window (consent.artefact), so the bench grants
enough consents for the phase (``FETCHES_PER_CONSENT`` each, hourly windows) and hands their tokens out round
robin: concurrent fetches lock different rows, as fetches of many citizens' consents would. The consents are
revoked and the document deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agency.client import DEMO, AgencyClient, bearer, download_shared
from bench.browserless import SignIn
from bench.sso import REDIRECT
from bench.stats import Tally
from bench.vault import Op, drive, phase, png_like, sign_in_token, transfers, upload_messages
from identity.oidc import registration
from identity.oidc.store import ClientStore
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from stack.info import StackInfo

VAULT = "urn:dinhdanh:service:vault"
CONSENT = "urn:dinhdanh:service:consent"
PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"  # one of the demo agency's registered purposes
SIZE = 100 * 1024
FETCHES_PER_CONSENT = 100  # the highest frequency an artefact may have (per hour here)
PLANNED_RATE = 700  # fetches a second the consents are granted for (above the 500/s target)
CLIENTS_FILE = "bench-consent-clients.json"
SLICE = 1.0  # seconds of one phase before the other runs again
TARGETS = {"fetches_per_s": 500, "p99_ms": 50, "ratio_agency_to_citizen": 0.8}


class NoConsentLeft(Exception):
    """Every granted fetch was used: the phase ran faster than planned."""


@dataclass
class ManyResources(SignIn):
    """A sign-in naming several resources (RFC 8707 §2: one ``resource`` parameter each)."""

    resources: tuple[str, ...] = field(default_factory=tuple)

    def authorize_url(self, state: str, nonce: str, challenge: str) -> str:
        params: dict[str, Any] = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": self.scope, "state": state, "nonce": nonce, "code_challenge": challenge,
            "code_challenge_method": "S256", "resource": list(self.resources),
        }  # fmt: skip
        return f"{self.issuer}/authorize?{urlencode(params, doseq=True)}"


async def bench_portal(info: StackInfo, folder: Path) -> dict[str, str]:
    """A portal client for this bench (vault and consent scopes and resources), registered once."""
    path = folder / CLIENTS_FILE
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    portal, secret = registration.portal("Bench consent portal", [REDIRECT],
                                         scopes=["vault.read", "vault.write", "consent.manage"],
                                         resources=[VAULT, CONSENT])  # fmt: skip
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    try:
        await ClientStore(pool).add(portal)
    finally:
        await pool.close()
    client = {"client_id": portal.client_id, "client_secret": secret}
    path.write_text(json.dumps(client))
    path.chmod(0o600)
    return client


async def citizen_token(info: StackInfo, folder: Path) -> str:
    """A bench citizen's access token for the vault and the consent service."""
    portal = await bench_portal(info, folder)
    flow = ManyResources(info.oidc_issuer, portal["client_id"], portal["client_secret"], REDIRECT,
                         scope="openid vault.read vault.write consent.manage", resources=(VAULT, CONSENT))  # fmt: skip
    return await sign_in_token(info, folder, flow)


def _stamp(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def _terms(document_id: str) -> cpb.ConsentTerms:
    now = dt.datetime.now(dt.UTC)
    return cpb.ConsentTerms(
        purpose=PURPOSE, document_ids=[document_id], expiry=_stamp(now + dt.timedelta(hours=2)),
        data_life_seconds=3600, max_fetches=FETCHES_PER_CONSENT,
        frequency=cpb.Frequency(count=FETCHES_PER_CONSENT, unit=cpb.FREQUENCY_UNIT_HOUR),
    )  # fmt: skip


def demo_agency(info: StackInfo) -> AgencyClient:
    """The stack's demo agency (``clients["agency_demo"]``) as the agency client library sees it."""
    if not info.clients.get(DEMO):
        raise RuntimeError("this stack lists no demo agency (stack.json clients.agency_demo): restart it")
    return AgencyClient.from_stack(info)


async def consent_tokens(agency: AgencyClient, consent_ids: list[str]) -> list[str]:
    """One certificate-bound consent token per consent (``agency.token``: the edge's mTLS token endpoint, RFC 8705
    §5 alias, ``tls_client_auth``), 16 requests at a time."""
    await agency.token_endpoint()  # the discovery document once, before the requests
    tokens: list[str] = []
    for start in range(0, len(consent_ids), 16):
        batch = consent_ids[start : start + 16]
        tokens.extend(t.access_token for t in await asyncio.gather(*(agency.token(c, PURPOSE) for c in batch)))
    return tokens


async def alternating(seconds: float, concurrency: int, ops: dict[str, Op]) -> dict[str, dict[str, Any]]:
    """Each op for ``seconds`` in all, ``concurrency`` calls in flight, in alternating slices of ``SLICE``."""
    tallies = {name: Tally() for name in ops}
    spent = dict.fromkeys(ops, 0.0)
    rounds = max(1, math.ceil(seconds / SLICE))
    for _ in range(rounds):
        for name, op in ops.items():
            spent[name] += await drive(tallies[name], seconds / rounds, concurrency, op)
    return {name: transfers(tally, spent[name], SIZE) for name, tally in tallies.items()}


def slots(tokens: list[str]) -> Iterator[str]:
    """Each token ``FETCHES_PER_CONSENT`` times, round robin across the consents."""
    for _ in range(FETCHES_PER_CONSENT):
        yield from tokens


async def run(info: StackInfo, var: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    folder = var / "secrets"
    token = await citizen_token(info, folder)
    agency = demo_agency(info)
    citizen_auth = bearer(token)
    data = png_like(SIZE)
    wanted = max(1, math.ceil(seconds * PLANNED_RATE / FETCHES_PER_CONSENT))
    consent_ids: list[str] = []
    async with info.channel("vault") as citizen_channel, info.channel("consent") as consent_channel, \
            agency.channel("vault") as agency_channel:  # fmt: skip
        vault = pb_grpc.VaultStub(citizen_channel)
        consents = cgrpc.ConsentStub(consent_channel)
        document = await vault.Upload(iter(upload_messages(data, "Bench consent")), metadata=citizen_auth, timeout=60)
        try:
            for start in range(0, wanted, 16):
                granted = await asyncio.gather(*(
                    consents.GrantConsent(cpb.GrantConsentRequest(client_id=agency.client_id,
                                                                  terms=_terms(document.id)),
                                          metadata=citizen_auth, timeout=30)
                    for _ in range(min(16, wanted - start))))  # fmt: skip
                consent_ids.extend(record.id for record in granted)
            available = slots(await consent_tokens(agency, consent_ids))

            async def first_check() -> None:
                shared = await download_shared(agency_channel, next(available), document.id)
                if shared.content != data:
                    raise RuntimeError("the shared document does not equal what the citizen uploaded")

            await first_check()

            async def fetch(_: int, __: int) -> None:
                slot = next(available, None)
                if slot is None:
                    raise NoConsentLeft
                if len((await download_shared(agency_channel, slot, document.id)).content) != SIZE:
                    raise ValueError("short download")

            async def download(_: int, __: int) -> None:
                got = 0
                async for reply in vault.Download(pb.DownloadRequest(id=document.id), metadata=citizen_auth,
                                                  timeout=30):  # fmt: skip
                    got += len(reply.chunk)
                if got != SIZE:
                    raise ValueError("short download")

            await phase(1.0, concurrency, SIZE, download)  # warm-up: connections, caches, the token's first check
            measured = await alternating(seconds, concurrency, {"agency": fetch, "citizen": download})
            agency_fetch, citizen_download = measured["agency"], measured["citizen"]
        finally:
            await cleanup(consents, vault, citizen_auth, consent_ids, document.id)
    ratio = (round(agency_fetch["documents_per_s"] / citizen_download["documents_per_s"], 3)
             if citizen_download["documents_per_s"] else 0.0)  # fmt: skip
    return {
        "benchmark": "consent",
        "cores": os.cpu_count(),
        "document_bytes": SIZE,
        "agency_fetch": agency_fetch,
        "citizen_download": citizen_download,
        "ratio_agency_to_citizen": ratio,
        "consents_granted": len(consent_ids),
        "concurrency": concurrency,
        "seconds_per_phase": seconds,
        "slice_seconds": SLICE,
        "targets": TARGETS,
    }


async def cleanup(
    consents: cgrpc.ConsentStub, vault: pb_grpc.VaultStub, auth: tuple[tuple[str, str], ...], consent_ids: list[str],
    document_id: str,
) -> None:  # fmt: skip
    """Revoke the bench consents and delete the document (best effort)."""
    queue = iter(consent_ids)

    async def revoker() -> None:
        for consent_id in queue:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await consents.Revoke(cpb.ConsentIdRequest(id=consent_id), metadata=auth, timeout=30)

    await asyncio.gather(*(revoker() for _ in range(8)))
    with contextlib.suppress(grpc.aio.AioRpcError):
        await vault.DeleteDocument(pb.DeleteDocumentRequest(id=document_id), metadata=auth, timeout=30)
