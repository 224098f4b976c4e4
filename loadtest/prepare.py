"""``dinhdanh loadtest prepare``: the accounts and grants the Locust scenarios use, made before the run (issue 12
item 1: "test accounts, TOTP secrets and consent grants are prepared beforehand by a command; activation with
Argon2id is not part of the measured load").

:func:`prepare` writes ``accounts.json`` (mode 0600: passwords and TOTP secrets) with:

- ``client``: a portal client registered for the load test (``identity.oidc.registration.portal`` through the same
  path as `dinhdanh clients add-portal`; authorization code + PKCE, ``client_secret_basic``), its redirect URI
  :data:`REDIRECT` (never contacted: the scenarios stop at the redirect), :data:`SCOPE` and :data:`RESOURCES`
  (the vault, the consent service, the issuance service);
- ``citizens``: seeded citizens who had no account, whose seeded judicial record is clean (the auto-approval of
  a criminal-record application approves them), each activated with a password and an enrolled TOTP secret
  over the identity RPCs (``ActivateAccount`` → ``VerifyPassword`` → ``StartTotpEnrollment`` →
  ``ConfirmTotpEnrollment``, as ``stack/provision.py`` does, each worker with its own provisioning source so that
  the identity service's one-activation-at-a-time per source does not serialise them), raised to assurance level 2
  (``SetAssuranceLevel`` as the operator: what `dinhdanh accounts verify-in-person` does, so that any of them can
  apply for a certificate), and having consented to the load-test client already (its row in ``oidc.consents``,
  the steady state of a returning citizen: the scenarios never see the consent page). ``last_step`` is the TOTP
  step each one used last (the scenarios never use a code of that step or an earlier one). Access tokens are
  **not** stored: a user signs in when it starts;
- ``agency``: the stack's demo agency (``stack.json`` ``clients["agency_demo"]``, ``stack/web.py
  register_demo_agency``), its certificate, purpose and the edge's mTLS token endpoint; ``consents``: consents
  granted to it by the first citizens (each uploads one small document and grants :data:`CONSENTS_PER_SHARER`
  consents on it; each consent allows :data:`FETCHES_PER_HOUR` fetches an hour and :data:`MAX_FETCHES` in all,
  the most consent/artefact.py allows);
- ``facility``: the demo hospital (``clients["facility_demo"]``, role ``facility``) and its Ministry code;
  ``patients``: registry citizens (never the demo citizen) whose visits it pushes and whom the agency asks for
  consent;
- ``certificates``: the QR texts of criminal-record certificates issued to the first citizens (``Apply`` →
  auto-approval → issued), which the verifiers check.

**How many citizens.** An account signs in at most once per 30-second TOTP step (loadtest/accounts.py),
so ``citizens`` accounts sustain ``citizens / 30`` sign-ins a second over the whole run, every actor's sign-ins
together (5,000 — all of `dinhdanh up`'s seeded registry — sustain about 166 a second). Prepare takes citizens
that have no account yet; when the registry has too few, it says so: seed more first (`dinhdanh registry seed
--count N --seed <another seed>`, or `dinhdanh up --seed-count N` on a first start). A second prepare into the same
file keeps the accounts it holds (still valid) and adds what is missing.

**Agency fetch rate.** ``consents`` consents sustain ``consents × 100 / 3600`` fetches a second for an hour and
``consents × 1000`` fetches in all; beyond that a fetch is refused with the consent's denial reason (the vault
enforcing the terms; the scenario counts it as a check that passed, and the consent rests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import json
import math
import os
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp

from bench.browserless import Browser, SignIn, sign_in
from core.keys import purposes
from identity import totp
from identity.oidc import registration
from identity.oidc.store import ClientStore, ConsentStore
from identity.oidc.subjects import Subjects
from issuance.health.demo import DEMO_MINISTRY_CODE
from issuance.issuer_keys import SigningKey
from loadtest import steps
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.issuance.v1 import issuance_pb2 as isspb
from protos.issuance.v1 import issuance_pb2_grpc as issgrpc
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from stack.info import StackInfo
from stack.secrets import SecretStore

VERSION = 1
REDIRECT = "http://localhost:9/loadtest/callback"  # registered, never contacted
VAULT = "urn:dinhdanh:service:vault"
CONSENT = "urn:dinhdanh:service:consent"
ISSUANCE = "urn:dinhdanh:service:issuance"
RESOURCES = (VAULT, CONSENT, ISSUANCE)
PORTAL_SCOPES = ("vault.read", "vault.write", "consent.manage", "issuance.apply")
SCOPE = " ".join(("openid", "profile", *PORTAL_SCOPES))
CLIENT_NAME = "Kiểm thử tải (load test portal)"
PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"  # one of the demo agency's registered purposes
CONSENTS_PER_SHARER = 10
FETCHES_PER_HOUR = 100  # consent/artefact.py MAX_FREQUENCY
MAX_FETCHES = 1000  # consent/artefact.py MAX_FETCHES
CONSENT_DAYS = 30
LEVEL_NOTE = "load test: verified in person (load-test citizen)"
SOURCE = "loadtest-prepare"
WORKERS = 4
TIMEOUT = 30.0
ISSUE_WAIT = 240.0  # seconds to wait for one certificate to be issued
DOCUMENT = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% shared in a load test\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class PrepareError(RuntimeError):
    """Prepare cannot go on; one line that says why and what to do."""


def _stamp(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def stack_var(info: StackInfo) -> Path:
    """The stack's ``var/`` (the folder of ``pki/`` where its CA lives, beside ``secrets/``)."""
    return Path(info.tls["ca"]).resolve().parent.parent


def write_private(path: Path, data: dict[str, Any]) -> None:
    """``data`` as JSON in ``path``, mode 0600, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
    tmp.replace(path)
    path.chmod(0o600)


async def _fresh_citizens(conn: asyncpg.Connection, count: int) -> list[str]:
    """Seeded citizens with no account and no conviction on record."""
    rows = await conn.fetch(
        "SELECT c.id_number FROM registry.citizens c LEFT JOIN identity.accounts a USING (id_number)"
        " WHERE a.id_number IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM judicial.convictions j WHERE j.id_number = c.id_number)"
        " ORDER BY c.id_number DESC LIMIT $1",
        count,
    )
    return [row["id_number"] for row in rows]


async def _activate(registry: rgrpc.PopulationRegistryStub, identity: igrpc.IdentityStub, id_number: str,
                    password: str, source: str) -> tuple[str, int]:  # fmt: skip
    """Activate with ``password`` and enroll TOTP; (the secret, the step its confirmation used)."""
    citizen = await registry.GetCitizen(rpb.GetCitizenRequest(id_number=id_number), timeout=TIMEOUT)
    activate = ipb.ActivateAccountRequest(id_number=id_number, phone=citizen.phone, password=password, source=source)
    await identity.ActivateAccount(activate, timeout=TIMEOUT)
    verify = ipb.VerifyPasswordRequest(id_number=id_number, password=password, source=source)
    step = await identity.VerifyPassword(verify, timeout=TIMEOUT)
    start = ipb.StartTotpEnrollmentRequest(ticket=step.ticket, source=source)
    enrollment = await identity.StartTotpEnrollment(start, timeout=TIMEOUT)
    code = totp.code_at(enrollment.secret)
    confirm = ipb.ConfirmTotpEnrollmentRequest(ticket=step.ticket, code=code, source=source)
    await identity.ConfirmTotpEnrollment(confirm, timeout=TIMEOUT)
    return enrollment.secret, totp.current_step()  # read after the call: never below the step it used


async def _retrying(call: Callable[[], Any], attempts: int = 30) -> Any:
    """``call()``, again after a second while the identity service says another attempt of this source runs."""
    for attempt in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt == attempts - 1:
                raise
            await asyncio.sleep(1.1)
    raise AssertionError("unreachable")


async def activate_citizens(info: StackInfo, id_numbers: list[str], password: str,
                            say: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    """Each of ``id_numbers`` activated with TOTP and at assurance level 2 (``WORKERS`` at a time)."""
    made: list[dict[str, Any]] = []
    queue = iter(id_numbers)
    async with info.channel("registry") as registry_channel, info.channel("identity") as identity_channel:
        registry, identity = rgrpc.PopulationRegistryStub(registry_channel), igrpc.IdentityStub(identity_channel)

        async def worker(index: int) -> None:
            source = f"{SOURCE}-{index}"
            for id_number in queue:
                try:
                    secret, last = await _retrying(
                        functools.partial(_activate, registry, identity, id_number, password, source)
                    )
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                        continue  # activated meanwhile by someone else: not ours to use
                    raise
                level = ipb.SetAssuranceLevelRequest(id_number=id_number, level=2, note=LEVEL_NOTE)
                await identity.SetAssuranceLevel(level, timeout=TIMEOUT)
                made.append({"id_number": id_number, "password": password, "totp_secret": secret, "last_step": last})
                if len(made) % 100 == 0:
                    say(f"{len(made)} citizens activated")

        await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    return made


async def register_client(pool: asyncpg.Pool, known: dict[str, Any] | None) -> dict[str, Any]:
    """The load-test portal client (registered once: kept when ``known`` is still registered)."""
    store = ClientStore(pool)
    if known and await store.get(known["client_id"]) is not None:
        return known
    client, secret = registration.portal(CLIENT_NAME, [REDIRECT], scopes=list(PORTAL_SCOPES),
                                         resources=list(RESOURCES))  # fmt: skip
    await store.add(client)
    return {"client_id": client.client_id, "client_secret": secret, "redirect_uri": REDIRECT, "scope": SCOPE,
            "resources": list(RESOURCES)}  # fmt: skip


async def consent_to_client(pool: asyncpg.Pool, subject_key: bytes, client_id: str, id_numbers: list[str]) -> None:
    """Each citizen has consented to the load-test client (the consent page's answer, stored ahead)."""
    subjects, store = Subjects(subject_key), ConsentStore(pool)
    for id_number in id_numbers:
        await store.grant(subjects.subject(id_number), client_id, set(SCOPE.split()), set(RESOURCES))


class ManyResources(SignIn):
    """The load-test client's sign-in: one ``resource`` parameter per service (RFC 8707 §2)."""

    def authorize_url(self, state: str, nonce: str, challenge: str) -> str:
        params: dict[str, Any] = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": self.scope, "state": state, "nonce": nonce, "code_challenge": challenge,
            "code_challenge_method": "S256", "resource": list(RESOURCES),
        }  # fmt: skip
        return f"{self.issuer}/authorize?{urlencode(params, doseq=True)}"


async def access_token(http: httpx.AsyncClient, info: StackInfo, client: dict[str, Any],
                       account: dict[str, Any]) -> str:  # fmt: skip
    """One sign-in of ``account`` (a code of a step after its last one, recorded); the access token, not kept."""
    step = max(totp.current_step() + 1, int(account["last_step"]) + 1)
    early = (step - 1) * totp.STEP - time.time()  # the next step's code is the latest one accepted now
    if early > 0:
        await asyncio.sleep(early + 0.05)
    code = totp.code_at(account["totp_secret"], step * totp.STEP)
    flow = ManyResources(info.oidc_issuer, client["client_id"], client["client_secret"], client["redirect_uri"], SCOPE)
    params = await sign_in(Browser(http), flow, account["id_number"], account["password"], code)
    account["last_step"] = step
    if "code" not in params:
        raise PrepareError(f"a prepared citizen's sign-in did not reach the redirect: {sorted(params)}")
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    if reply.status_code != 200:
        raise PrepareError(f"the token request was refused: {reply.status_code} {reply.text[:200]}")
    return str(reply.json()["access_token"])


def _terms(document_id: str) -> cpb.ConsentTerms:
    now = dt.datetime.now(dt.UTC)
    return cpb.ConsentTerms(
        purpose=PURPOSE, document_ids=[document_id], expiry=_stamp(now + dt.timedelta(days=CONSENT_DAYS)),
        data_life_seconds=3600, max_fetches=MAX_FETCHES,
        frequency=cpb.Frequency(count=FETCHES_PER_HOUR, unit=cpb.FREQUENCY_UNIT_HOUR),
    )  # fmt: skip


def _upload() -> list[vpb.UploadRequest]:
    meta = vpb.UploadMetadata(document_type=vpb.DOCUMENT_TYPE_OTHER, title="Giấy tờ chia sẻ (kiểm thử tải)",
                              filename="chia-se.pdf")  # fmt: skip
    return [vpb.UploadRequest(metadata=meta), vpb.UploadRequest(chunk=DOCUMENT),
            vpb.UploadRequest(end=vpb.UploadEnd(size_bytes=len(DOCUMENT)))]  # fmt: skip


async def share(info: StackInfo, token: str, agency_id: str, count: int) -> list[dict[str, Any]]:
    """The citizen uploads one document and grants the agency ``count`` consents on it."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with info.channel("vault") as vault_channel, info.channel("consent") as consent_channel:
        document = await vgrpc.VaultStub(vault_channel).Upload(iter(_upload()), metadata=metadata, timeout=TIMEOUT)
        stub = cgrpc.ConsentStub(consent_channel)
        granted = []
        for _ in range(count):
            record = await stub.GrantConsent(cpb.GrantConsentRequest(client_id=agency_id, terms=_terms(document.id)),
                                             metadata=metadata, timeout=TIMEOUT)  # fmt: skip
            granted.append({"id": record.id, "document_id": document.id, "size_bytes": len(DOCUMENT)})
    return granted


async def certificate(info: StackInfo, token: str) -> str:
    """A criminal-record certificate applied for and issued (Form No. 1, electronic); its QR text."""
    metadata = (("authorization", f"Bearer {token}"),)
    answers = isspb.Answers(form=1, purpose="EMPLOYMENT", copies=1, delivery=isspb.DELIVERY_ELECTRONIC,
                            email="loadtest@example.vn")  # fmt: skip
    holder = json.dumps(SigningKey.generate().public_jwk)
    async with info.channel("issuance") as channel:
        stub = issgrpc.CertificatesStub(channel)
        request = isspb.ApplyRequest(request_id=str(uuid.uuid4()), answers=answers, holder_jwk=holder)
        dossier = await stub.Apply(request, metadata=metadata, timeout=TIMEOUT)
        give_up = time.monotonic() + ISSUE_WAIT
        while dossier.status != isspb.DOSSIER_STATUS_ISSUED:
            if dossier.status == isspb.DOSSIER_STATUS_REJECTED or time.monotonic() > give_up:
                raise PrepareError(
                    f"a load-test certificate was not issued: {isspb.DossierStatus.Name(dossier.status)}"
                )
            await asyncio.sleep(0.5)
            dossier = await stub.GetMyDossier(isspb.DossierRequest(id=dossier.id), metadata=metadata, timeout=TIMEOUT)
        credential = await stub.GetMyCredential(isspb.DossierRequest(id=dossier.id), metadata=metadata,
                                                timeout=TIMEOUT)  # fmt: skip
    if not credential.qr_text:
        raise PrepareError("the issued certificate has no QR text")
    return str(credential.qr_text)


async def mtls_token_endpoint(http: httpx.AsyncClient, info: StackInfo) -> str:
    reply = await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")
    aliases = reply.raise_for_status().json().get("mtls_endpoint_aliases") or {}
    if not aliases.get("token_endpoint"):
        raise PrepareError("the edge publishes no mTLS token endpoint (mtls_endpoint_aliases): consent tokens need it")
    return str(aliases["token_endpoint"])


def _holder(info: StackInfo, key: str) -> dict[str, Any]:
    found = info.clients.get(key) or {}
    if not all(found.get(k) for k in ("client_id", "cert", "key")):
        raise PrepareError(f"stack.json lists no {key} with its certificate: restart the stack (`dinhdanh up`)")
    return {"client_id": found["client_id"], "cert": found["cert"], "key": found["key"],
            "ca": found.get("ca") or info.tls["ca"], "name": found.get("name", "")}  # fmt: skip


def _previous(out: Path, info: StackInfo) -> dict[str, Any]:
    """What an earlier prepare of this stack wrote to ``out`` (nothing when it was another stack's)."""
    if not out.is_file():
        return {}
    try:
        data = json.loads(out.read_text())
    except ValueError:
        return {}
    return data if isinstance(data, dict) and data.get("issuer") == info.oidc_issuer else {}


async def prepare(
    info: StackInfo,
    out: Path,
    citizens: int = 300,
    consents: int = 100,
    certificates: int = 3,
    patients: int = 500,
    var: Path | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Path:
    """Write ``out`` (``accounts.json``, 0600) for a load test of the stack ``info`` describes; see the module
    docstring. ``var``: the stack's ``var/`` (its ``secrets/`` hold the edge's subject key), found from
    ``stack.json``'s CA path when not given."""
    if citizens < 1 or consents < 0 or certificates < 0 or patients < 1:
        raise PrepareError("citizens and patients are at least 1; consents and certificates at least 0")
    sharers = math.ceil(consents / CONSENTS_PER_SHARER)
    if max(sharers, certificates) > citizens:
        raise PrepareError(f"{consents} consents and {certificates} certificates need at least "
                           f"{max(sharers, certificates)} citizens")  # fmt: skip
    folder = (var or stack_var(info)) / "secrets"
    if not folder.is_dir():
        raise PrepareError(f"{folder} not found: give the stack's var folder (--var)")
    subject_key = SecretStore(folder).keys("edge").key(purposes.OIDC_SUBJECT)
    agency, facility = _holder(info, "agency_demo"), _holder(info, "facility_demo")
    previous = _previous(out, info)
    kept: list[dict[str, Any]] = list(previous.get("citizens") or [])[:citizens]
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    try:
        if kept:  # still accounts? (a new database forgets them)
            alive = {r["id_number"] for r in await pool.fetch(
                "SELECT id_number FROM identity.accounts WHERE id_number = ANY($1::text[])",
                [a["id_number"] for a in kept])}  # fmt: skip
            used = steps.remembered(out)
            kept = [{**a, "last_step": max(int(a.get("last_step", 0)), used.get(a["id_number"], 0))}
                    for a in kept if a["id_number"] in alive]  # fmt: skip
        client = await register_client(pool, previous.get("client") if kept else None)
        async with pool.acquire() as conn:
            wanted = await _fresh_citizens(conn, citizens - len(kept)) if len(kept) < citizens else []
            demo = str(info.demo_citizen.get("id_number", ""))  # the demo citizen's book and requests stay clean
            patient_rows = await conn.fetch(
                "SELECT id_number FROM registry.citizens WHERE id_number <> $2 ORDER BY random() LIMIT $1",
                patients,
                demo,
            )
        if len(kept) + len(wanted) < citizens:
            raise PrepareError(
                f"the registry has {len(wanted)} citizens without an account left, {citizens - len(kept)} wanted: "
                "seed more (`dinhdanh registry seed --count N --seed <another seed>`) or prepare fewer")  # fmt: skip
        say(f"activating {len(wanted)} citizens (password, TOTP, assurance level 2)")
        password = "Loadtest-" + secrets.token_urlsafe(12)
        made = await activate_citizens(info, wanted, password, say)
        accounts = kept + made
        await consent_to_client(pool, subject_key, client["client_id"], [a["id_number"] for a in accounts])
    finally:
        await pool.close()
    granted: list[dict[str, Any]] = []
    qr_texts: list[dict[str, str]] = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        token_endpoint = await mtls_token_endpoint(http, info)
        tokens: dict[str, str] = {}
        for account in itertools.islice(accounts, max(sharers, certificates)):
            tokens[account["id_number"]] = await access_token(http, info, client, account)
        say(f"{len(tokens)} citizens share documents and apply for certificates")
        left = consents
        for id_number in itertools.islice(tokens, sharers):
            batch = min(CONSENTS_PER_SHARER, left)
            granted.extend(await share(info, tokens[id_number], agency["client_id"], batch))
            left -= batch
        issued = await asyncio.gather(*(certificate(info, tokens[n]) for n in itertools.islice(tokens, certificates)))
        qr_texts = [{"qr_text": text} for text in issued]
    data = {
        "version": VERSION,
        "issuer": info.oidc_issuer,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "client": client,
        "citizens": accounts,
        "agency": {**agency, "purpose": PURPOSE, "mtls_token_endpoint": token_endpoint},
        "consents": granted,
        "facility": {**facility, "ministry_code": DEMO_MINISTRY_CODE},
        "patients": [row["id_number"] for row in patient_rows],
        "certificates": qr_texts,
        "sustains": {
            "sign_ins_per_second": round(len(accounts) / totp.STEP, 1),
            "agency_fetches_per_second": round(len(granted) * FETCHES_PER_HOUR / 3600, 2),
            "agency_fetches_in_all": len(granted) * MAX_FETCHES,
        },
    }
    write_private(out, data)
    say(f"wrote {out}: {len(accounts)} citizens, {len(granted)} consents, {len(qr_texts)} certificates")
    return out
