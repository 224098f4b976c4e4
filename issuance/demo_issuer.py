"""The demo issuer (issue 11 item 5): at `dinhdanh up` the demo citizen finds their state-held papers in the vault.

On every start of the stack, after the edge is up (``stack.supervisor``), :func:`set_up`:

1. makes the demo citizen's account **assurance level 2** (``Identity.SetAssuranceLevel`` as the operator, as
   `dinhdanh accounts verify-in-person` does; nothing is changed when it already is), so the README can walk a
   newcomer from sign-in to applying for a criminal-record certificate (which needs level 2);
2. registers, once, the agency client :data:`NAME` (``stack.web.register_demo_agency``: ``client_credentials``,
   ``client_secret_basic``, with a client certificate from the platform CA in ``var/pki/issuer-demo.*`` and its id
   and secret in ``var/secrets/issuer-demo.json``), scope ``vault.issue``, resource the vault, and keeps its
   registered ``jwks`` the public key of its own P-256 signing key (a 32-byte seed in
   ``var/secrets/issuer-demo-signing.seed``, mode 0600; ``issuance.issuer_keys.SigningKey.from_seed``), which is what
   the vault checks each delivery's ``issuer_signature`` against (vault/signatures.py);
3. delivers, through ``issuance.delivery.VaultDeliverer`` over mutual TLS with that certificate, two papers printed
   from the citizen's registry record (``issuance.registry_papers``): the citizen ID card record
   (``CITIZEN_ID_CARD``) and the residence confirmation (``RESIDENCE_CONFIRMATION``), each a PDF with a QR signed
   by the same key (``issuance.qr``, document types ``CCCD`` and ``CT07``), and the issuer signature binding its
   SHA-256, type and dates. Their issuer document ids are fixed (``CCCD-<id>``, ``CT07-<id>``): the vault returns
   the document already delivered for the same issuer and id, so a restart never duplicates them. Their issue
   date is the first delivery's, kept in ``var/secrets/issuer-demo-papers.json``.

A failure here (the vault or the edge not answering) is reported and does not stop the stack: the demo papers are
a convenience, the platform works without them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from issuance import qr, registry_papers
from issuance.certificates import VIETNAM
from issuance.delivery import ClientCredentials, VaultDeliverer
from issuance.issuer_keys import ALGORITHM, SigningKey
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from registry.citizen import Citizen
from registry.store import PopulationStore
from stack.info import StackInfo
from stack.pki import PlatformCA
from stack.secrets import SecretStore
from stack.web import DemoAgency, register_demo_agency
from vault import signatures
from vault.documents import Issued

NAME = "Cục Cảnh sát quản lý hành chính về trật tự xã hội — Bộ Công an (demo)"
VAULT = "urn:dinhdanh:service:vault"
KEY_FILE = "issuer-demo-signing.seed"
PAPERS_FILE = "issuer-demo-papers.json"
LEVEL_NOTE = "demo citizen, verified at dinhdanh up (issue 11 item 5)"
DEMO_ISSUER = DemoAgency(
    "issuer_demo",
    "issuer-demo",
    NAME,
    ("CITIZEN_ID_CARD", "RESIDENCE_CONFIRMATION"),
    scopes=("vault.issue",),
    resources=(VAULT,),
)
ID_CARD_QR = "CCCD"  # the QR's document type of the ID card record
RESIDENCE_QR = "CT07"  # of the residence confirmation (form CT07)


@dataclass(frozen=True)
class Delivered:
    """What the demo issuer delivered: the vault's document id and title of each paper, by issuer document id."""

    client_id: str
    documents: dict[str, str]


def signing_key(secrets: SecretStore) -> SigningKey:
    """The demo issuer's P-256 signing key, from its seed kept in ``var/secrets`` (made on first use)."""
    token = secrets.token(KEY_FILE, 32)
    return SigningKey.from_seed(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


async def register(ca: PlatformCA, secrets: SecretStore, dsn: str) -> dict[str, Any]:
    """The demo issuer's agency client (registered once) with its current public key as ``jwks`` and its full name (a
    stack first started when the name went through a 64-character CN was registered under a short one)."""
    registered = await register_demo_agency(ca, secrets, dsn, DEMO_ISSUER)
    jwks = signing_key(secrets).jwks()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE oidc.clients SET jwks = $2::jsonb, name = $3, updated_at = now()"
            " WHERE client_id = $1 AND (jwks IS DISTINCT FROM $2::jsonb OR name IS DISTINCT FROM $3)",
            registered["client_id"],
            json.dumps(jwks),
            NAME,
        )
    finally:
        await conn.close()
    return {**registered, "name": NAME}


async def make_level_2(info: StackInfo, id_number: str) -> int:
    """The citizen's account raised to assurance level 2 (unchanged when it is); the level it has."""
    async with info.channel("identity") as channel:
        identity = igrpc.IdentityStub(channel)
        account = await identity.GetAccount(ipb.GetAccountRequest(id_number=id_number), timeout=10)
        if account.assurance_level >= 2:
            return int(account.assurance_level)
        request = ipb.SetAssuranceLevelRequest(id_number=id_number, level=2, note=LEVEL_NOTE)
        return int((await identity.SetAssuranceLevel(request, timeout=10)).assurance_level)


def _issued_on(secrets: SecretStore, id_number: str) -> date:
    state = secrets.json(PAPERS_FILE) or {}
    if state.get("id_number") == id_number and isinstance(state.get("issued_on"), str):
        return date.fromisoformat(state["issued_on"])
    today = datetime.now(VIETNAM).date()
    secrets.put_json(PAPERS_FILE, {"id_number": id_number, "issued_on": today.isoformat()})
    return today


def papers(
    citizen: Citizen, key: SigningKey, *, issuer: str, issued_on: date, verify_url: str
) -> list[registry_papers.Paper]:
    """The two papers of ``citizen``, each with its QR signed by ``key``."""
    at = datetime.now(UTC)

    def qr_png(document_type: str, number: str) -> bytes:
        fields = qr.QrFields(
            document_type=document_type,
            holder_name=citizen.full_name,
            id_last_digits=qr.id_last_digits(citizen.id_number),
            convictions=None,
            issued_on=issued_on,
            certificate_id=number,
            status_index=0,
        )
        return qr.render_qr(qr.encode_qr(key, fields, issuer=issuer, issued_at=at))

    card, residence = f"CCCD-{citizen.id_number}", f"CT07-{citizen.id_number}"
    return [
        registry_papers.id_card_record(
            citizen, number=card, issued_on=issued_on, qr_png=qr_png(ID_CARD_QR, card), verify_url=verify_url
        ),
        registry_papers.residence_confirmation(
            citizen,
            number=residence,
            issued_on=issued_on,
            qr_png=qr_png(RESIDENCE_QR, residence),
            verify_url=verify_url,
        ),
    ]


async def deliver_papers(
    info: StackInfo, secrets: SecretStore, registered: dict[str, Any], citizen: Citizen
) -> Delivered:
    """Sign and deliver the two papers into ``citizen``'s vault (the vault keeps one per issuer document id)."""
    key = signing_key(secrets)
    client_id = str(registered["client_id"])
    issued_on = _issued_on(secrets, citizen.id_number)
    verify_url = f"{info.oidc_issuer}/verify"
    deliverer = VaultDeliverer(
        issuer=info.oidc_issuer,
        credentials=ClientCredentials(client_id, str(registered.get("client_secret") or "")),  # none: tls_client_auth
        vault_address=info.services["vault"],
        tls_ca=Path(registered["ca"]),
        tls_cert=Path(registered["cert"]),
        tls_key=Path(registered["key"]),
    )
    documents: dict[str, str] = {}
    try:
        for paper in papers(citizen, key, issuer=info.oidc_issuer, issued_on=issued_on, verify_url=verify_url):
            sha256 = hashlib.sha256(paper.pdf).digest()
            issued = Issued(client_id, paper.number, b"")
            signature = signatures.sign(
                key.private, ALGORITHM, issued, paper.document_type, sha256, (paper.issued_on, paper.expires_on)
            )
            document = await deliverer.deliver(
                citizen_id_number=citizen.id_number,
                issuer_document_id=paper.number,
                document_type=paper.document_type,
                title=paper.title,
                filename=paper.filename,
                content=paper.pdf,
                issuer_signature=signature,
                issued_on=paper.issued_on,
                expires_on=paper.expires_on,
            )
            documents[paper.number] = document.id
    finally:
        await deliverer.close()
    return Delivered(client_id, documents)


async def set_up(ca: PlatformCA, secrets: SecretStore, dsn: str, info: StackInfo, say: Any = print) -> dict[str, Any]:
    """Items 1–3 of the module docstring; returns what ``stack.json`` lists as ``clients["issuer_demo"]``
    (client id and secret, name, certificate paths) — or {} when it could not be done (reported through ``say``)."""
    id_number = str(info.demo_citizen["id_number"])
    try:
        await make_level_2(info, id_number)
        registered = await register(ca, secrets, dsn)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            citizen = await PopulationStore(pool).get(id_number)
        finally:
            await pool.close()
        if citizen is None:
            say(f"the demo issuer found no registry record for the demo citizen {id_number[-4:]}")
            return registered
        await deliver_papers(info, secrets, registered, citizen)
        return registered
    except Exception as error:  # a convenience: reported, never the reason the stack fails to start
        detail = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
        say(f"the demo issuer could not deliver the demo citizen's papers: {type(error).__name__}: {detail}")
        return {}


__all__ = [
    "DEMO_ISSUER",
    "NAME",
    "Delivered",
    "deliver_papers",
    "make_level_2",
    "papers",
    "register",
    "set_up",
]
