"""Certificate-bound consent tokens (issue 10 item 2): the edge's mutual-TLS token endpoint (RFC 8705 §5),
``tls_client_auth`` (RFC 8705 §2.1), and ``client_credentials`` with ``authorization_details`` of type ``consent``
(RFC 9396 §6) checked against the stored artefact, bound to the agency's certificate (RFC 8705 §3.1).

Artefacts are written straight into the test stack's consent store (``PostgresConsentStore`` on the owner's
DSN), signed with a consent key the test publishes, so every status and window is at hand."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import secrets
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import ECKey

from consent.artefact import Frequency, FrequencyUnit, draft, sign
from consent.pg_store import PostgresConsentStore
from consent.signing import ConsentKey
from consent.states import Actor, Event
from identity.oidc import registration
from identity.oidc.clients import KEY_AUTH, Client, new_client_id
from identity.oidc.store import ClientStore
from services.tls import thumbprint
from stack.info import StackInfo
from stack.supervisor import Stack
from vault.documents import DocumentType

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
VAULT = "urn:dinhdanh:service:vault"
PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"
UNKNOWN = {"error": "invalid_authorization_details", "error_description": "unknown consent_id"}


@dataclass(frozen=True)
class Agency:
    client_id: str
    cert: Path
    key: Path
    ca: Path
    secret: str = ""
    signing_key: ECKey | None = None  # private_key_jwt

    def tls(self, with_cert: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if with_cert:
            context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def x5t(self) -> str:
        return thumbprint(x509.load_pem_x509_certificate(self.cert.read_bytes()))

    def assertion(self, audience: str) -> dict[str, str]:
        assert self.signing_key is not None
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": audience, "jti": secrets.token_urlsafe(12),
                  "iat": now, "exp": now + 60}  # fmt: skip
        signed = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, self.signing_key)
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def demo(info: StackInfo) -> Agency:
    d = info.clients["agency_demo"]
    return Agency(d["client_id"], Path(d["cert"]), Path(d["key"]), Path(d["ca"]), secret=d.get("client_secret", ""))


@pytest.fixture(scope="module")
async def pool(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    made = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=4)
    yield made
    await made.close()


@pytest.fixture(scope="module")
async def keyed(stack: Stack, pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory) -> Agency:
    """A second agency: ``private_key_jwt`` with its own key, and a client certificate of its own."""
    signing = ECKey.generate_key("P-256")
    public = {**signing.as_dict(private=False), "kid": "k1", "alg": "ES256"}
    client = Client(client_id=new_client_id("agency"), name="Sở Y tế (khóa riêng)", kind="agency",
                    grant_types=("client_credentials",), scopes=("vault.read",), auth_method=KEY_AUTH,
                    jwks={"keys": [public]}, purposes=(PURPOSE,), resources=(VAULT,))  # fmt: skip
    store = ClientStore(pool)
    await store.add(client)
    folder = tmp_path_factory.mktemp("keyed")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyed")])).sign(key, hashes.SHA256())  # fmt: skip
    issued = await registration.issue_certificate(
        store, stack.ca.sign_agency_csr, client.client_id, csr.public_bytes(serialization.Encoding.PEM)
    )
    (folder / "keyed.pem").write_bytes(issued.pem)
    (folder / "keyed.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return Agency(client.client_id, folder / "keyed.pem", folder / "keyed.key", stack.ca.ca_cert_path,
                  signing_key=signing)  # fmt: skip


@pytest.fixture(scope="module")
async def consents(pool: asyncpg.Pool) -> tuple[PostgresConsentStore, ConsentKey]:
    key = ConsentKey.from_seed(secrets.token_bytes(32))
    store = PostgresConsentStore(pool)
    await store.publish_key(key)
    return store, key


@pytest.fixture(scope="module")
async def metadata(info: StackInfo) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=20) as http:
        reply = await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")
    return reply.json()  # type: ignore[no-any-return]


async def artefact(
    consents: tuple[PostgresConsentStore, ConsentKey], client_id: str, *events: Event, approve: bool = True,
    start_in: dt.timedelta = dt.timedelta(0), lasts: dt.timedelta = dt.timedelta(days=1),
    created_ago: dt.timedelta = dt.timedelta(0), purpose: str = PURPOSE, max_fetches: int = 10,
) -> uuid.UUID:  # fmt: skip
    """A consent of ``client_id`` for a made-up citizen, approved (ACTIVE) unless told not, then ``events``."""
    store, key = consents
    now = dt.datetime.now(dt.UTC)
    created = now - created_ago
    pending = draft(
        subject="owner-" + secrets.token_hex(8), client_id=client_id, purpose=purpose,
        document_types=(DocumentType.CRIMINAL_RECORD_CERTIFICATE,), start=created + start_in,
        expiry=created + start_in + lasts, data_life=dt.timedelta(days=30), max_fetches=max_fetches,
        frequency=Frequency(3, FrequencyUnit.DAY), now=created,
    )  # fmt: skip
    if approve:
        approved = pending.approved(pending.created_at)
        await store.create(pending, approved=(approved, sign(approved, key.private)))
    else:
        await store.create(pending)
    for event in events:
        actor = Actor.SYSTEM if event is Event.EXPIRE else Actor.CITIZEN
        await store.transition(pending.id, event, actor, dt.datetime.now(dt.UTC))
    return pending.id


def details(consent_id: uuid.UUID | str, purpose: str | None = None) -> str:
    detail = {"type": "consent", "consent_id": str(consent_id)}
    if purpose:
        detail["purpose"] = purpose
    return json.dumps([detail])


async def consent_token(
    metadata: dict[str, Any], agency: Agency, authorization_details: str | None, *, mtls: bool = True,
    cert: Agency | None = None, **form: str,
) -> httpx.Response:  # fmt: skip
    """A token request as ``agency`` (its secret, else its key, else tls_client_auth), over the mTLS alias with
    ``cert``'s certificate (the agency's own by default) or over the plain endpoint."""
    url = metadata["mtls_endpoint_aliases"]["token_endpoint"] if mtls else metadata["token_endpoint"]
    data = {"grant_type": "client_credentials", **form}
    if authorization_details is not None:
        data["authorization_details"] = authorization_details
    auth = None
    if agency.secret:
        auth = (agency.client_id, agency.secret)
    elif agency.signing_key is not None:
        data |= agency.assertion(f"{metadata['issuer']}/token")
    else:
        data["client_id"] = agency.client_id
    verify = (cert or agency).tls() if mtls else True
    async with httpx.AsyncClient(timeout=20, verify=verify) as http:
        return await http.post(url, data=data, auth=auth)


# -- discovery -------------------------------------------------------------------------------------------------


def test_discovery_advertises_the_mtls_aliases_bound_tokens_and_consent_details(
    metadata: dict[str, Any], stack: Stack
) -> None:
    base = f"https://localhost:{stack.ports.edge_mtls}"
    assert metadata["mtls_endpoint_aliases"] == {
        "token_endpoint": f"{base}/token",
        "revocation_endpoint": f"{base}/revoke",
        "introspection_endpoint": f"{base}/introspect",
        "pushed_authorization_request_endpoint": f"{base}/par",  # RFC 9126 over mutual TLS (docs/fapi.md)
    }
    assert metadata["tls_client_certificate_bound_access_tokens"] is True
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "private_key_jwt", "tls_client_auth"]  # fmt: skip
    assert metadata["authorization_details_types_supported"] == ["consent"]
    assert metadata["token_endpoint"] == f"{metadata['issuer']}/token"  # the plain one stays


# -- tls_client_auth and bound client tokens --------------------------------------------------------------------


async def test_tls_client_auth_with_the_agencys_own_certificate(metadata: dict[str, Any], demo: Agency) -> None:
    by_cert = Agency(demo.client_id, demo.cert, demo.key, demo.ca)  # no secret: the certificate alone
    reply = await consent_token(metadata, by_cert, None, scope="vault.read")
    assert reply.status_code == 200, reply.text
    claims = claims_of(reply.json()["access_token"])
    assert (claims["sub"], claims["client_id"], claims["scope"]) == (demo.client_id, demo.client_id, "vault.read")
    assert claims["cnf"] == {"x5t#S256": demo.x5t()}  # RFC 8705 §3.1


async def test_a_certificate_that_is_not_the_clients_is_invalid_client(
    metadata: dict[str, Any], demo: Agency, keyed: Agency
) -> None:
    by_cert = Agency(demo.client_id, demo.cert, demo.key, demo.ca)
    reply = await consent_token(metadata, by_cert, None, cert=keyed)  # the other agency's certificate
    assert reply.status_code in (400, 401), reply.text
    assert reply.json()["error"] == "invalid_client"
    plain = await consent_token(metadata, by_cert, None, mtls=False)  # no certificate at all
    assert plain.json()["error"] == "invalid_client"


async def test_the_mtls_port_refuses_a_connection_without_a_client_certificate(
    metadata: dict[str, Any], demo: Agency
) -> None:
    async with httpx.AsyncClient(timeout=20, verify=demo.tls(with_cert=False)) as http:
        with pytest.raises(httpx.HTTPError):
            await http.post(metadata["mtls_endpoint_aliases"]["token_endpoint"], data={"grant_type": "x"})


async def test_tokens_are_bound_over_mtls_and_unbound_only_for_a_plain_agency(
    metadata: dict[str, Any], demo: Agency, keyed: Agency
) -> None:
    """``keyed`` is a plain agency (written around registration, as one registered before the FAPI 2.0 profile);
    the demo agency is on the profile (tls_client_auth): without its certificate it gets nothing (docs/fapi.md)."""
    for agency in (demo, keyed):
        bound = await consent_token(metadata, agency, None)
        assert bound.status_code == 200, bound.text
        assert claims_of(bound.json()["access_token"])["cnf"] == {"x5t#S256": agency.x5t()}
    plain = await consent_token(metadata, keyed, None, mtls=False)
    assert plain.status_code == 200, plain.text
    assert "cnf" not in claims_of(plain.json()["access_token"])
    refused = await consent_token(metadata, demo, None, mtls=False)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client"), refused.text


async def test_one_client_assertion_replayed_in_parallel_on_both_ports_is_accepted_once(
    metadata: dict[str, Any], keyed: Agency
) -> None:
    """RFC 7523 §3 item 7: the assertion's jti is single-use across the plain and the mTLS endpoint alike."""
    signed = keyed.assertion(f"{metadata['issuer']}/token")
    data = {"grant_type": "client_credentials", **signed}
    async with httpx.AsyncClient(timeout=20, verify=keyed.tls()) as tls, httpx.AsyncClient(timeout=20) as plain:
        replies = await asyncio.gather(*(
            client.post(url, data=data)
            for client, url in [(tls, metadata["mtls_endpoint_aliases"]["token_endpoint"]),
                                (plain, metadata["token_endpoint"])] * 5
        ))  # fmt: skip
    assert sorted(r.status_code for r in replies).count(200) == 1, [r.text[:100] for r in replies]
    assert {r.json()["error"] for r in replies if r.status_code != 200} == {"invalid_client"}


# -- consent tokens ----------------------------------------------------------------------------------------------


async def test_a_consent_token_for_an_active_own_artefact(
    metadata: dict[str, Any], demo: Agency, consents: tuple[PostgresConsentStore, ConsentKey], info: StackInfo
) -> None:
    consent_id = await artefact(consents, demo.client_id)
    before = int(time.time())
    reply = await consent_token(metadata, demo, details(consent_id))  # purpose left to the artefact
    assert reply.status_code == 200, reply.text
    body = reply.json()
    granted = [{"type": "consent", "consent_id": str(consent_id), "purpose": PURPOSE}]
    assert body["authorization_details"] == granted  # RFC 9396 §7
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 300
    assert "refresh_token" not in body
    claims = claims_of(body["access_token"])
    assert claims["iss"] == info.oidc_issuer
    assert (claims["sub"], claims["client_id"]) == (demo.client_id, demo.client_id)
    assert claims["aud"] == [VAULT]
    assert claims["authorization_details"] == granted  # RFC 9396 §9.1
    assert claims["cnf"] == {"x5t#S256": demo.x5t()}
    assert "scope" not in claims
    assert before <= claims["iat"]
    assert claims["exp"] - claims["iat"] <= 300
    assert set(claims) == {"iss", "sub", "aud", "client_id", "iat", "exp", "jti", "cnf", "authorization_details"}
    again = await consent_token(metadata, demo, details(consent_id, PURPOSE), resource=VAULT)
    assert again.status_code == 200, again.text


async def test_a_consent_token_never_outlives_its_artefact(
    metadata: dict[str, Any], keyed: Agency, consents: tuple[PostgresConsentStore, ConsentKey]
) -> None:
    consent_id = await artefact(consents, keyed.client_id, lasts=dt.timedelta(seconds=90))
    reply = await consent_token(metadata, keyed, details(consent_id, PURPOSE))  # private_key_jwt
    assert reply.status_code == 200, reply.text
    store, _ = consents
    expiry = (await store.get(consent_id)).artefact.expiry
    claims = claims_of(reply.json()["access_token"])
    assert claims["exp"] <= int(expiry.timestamp())
    assert claims["cnf"] == {"x5t#S256": keyed.x5t()}


async def test_consent_tokens_are_refused_for_artefacts_the_agency_may_not_use(
    metadata: dict[str, Any], demo: Agency, keyed: Agency, consents: tuple[PostgresConsentStore, ConsentKey]
) -> None:
    theirs = await artefact(consents, keyed.client_id)
    assert (await consent_token(metadata, demo, details(theirs))).json() == UNKNOWN  # as if unknown
    unknown = await consent_token(metadata, demo, details(uuid.uuid4()))
    assert (unknown.status_code, unknown.json()) == (400, UNKNOWN)
    cases = {
        "NOT_ACTIVE": await artefact(consents, demo.client_id, approve=False),  # PENDING
        "NOT_ACTIVE ": await artefact(consents, demo.client_id, Event.PAUSE),
        "NOT_ACTIVE  ": await artefact(consents, demo.client_id, Event.REVOKE),
        "NOT_STARTED": await artefact(consents, demo.client_id, start_in=dt.timedelta(hours=1)),
        "EXPIRED": await artefact(consents, demo.client_id, created_ago=dt.timedelta(days=2)),
        "EXPIRED ": await artefact(consents, demo.client_id, Event.EXPIRE),
    }
    for reason, consent_id in cases.items():
        reply = await consent_token(metadata, demo, details(consent_id))
        assert reply.status_code == 400, (reason, reply.text)
        body = reply.json()
        assert body["error"] == "invalid_authorization_details", (reason, body)
        assert body["error_description"].startswith(reason.strip() + ":"), (reason, body)
    wrong_purpose = await artefact(consents, demo.client_id)
    reply = await consent_token(metadata, demo, details(wrong_purpose, "BANK_KYC"))
    assert reply.json()["error_description"].startswith("WRONG_PURPOSE:"), reply.text
    resumed = cases["NOT_ACTIVE "]
    store, _ = consents
    await store.transition(resumed, Event.RESUME, Actor.CITIZEN, dt.datetime.now(dt.UTC))
    assert (await consent_token(metadata, demo, details(resumed))).status_code == 200


async def test_consent_tokens_only_over_mtls_with_the_agencys_own_certificate(
    metadata: dict[str, Any], demo: Agency, keyed: Agency, consents: tuple[PostgresConsentStore, ConsentKey]
) -> None:
    consent_id = await artefact(consents, demo.client_id)
    plain = await consent_token(metadata, demo, details(consent_id), mtls=False)
    assert plain.status_code == 400
    assert plain.json()["error"] == "invalid_request"
    assert "consent tokens are certificate-bound: use the mTLS endpoint" in plain.json()["error_description"]
    mine = await artefact(consents, keyed.client_id)
    borrowed = await consent_token(metadata, keyed, details(mine), cert=demo)  # keyed's key, demo's certificate
    assert borrowed.status_code in (400, 401), borrowed.text
    assert borrowed.json()["error"] == "invalid_client"  # RFC 8705 §2.1: not keyed's registered certificate
    assert "not the registered one" in borrowed.json()["error_description"]
    elsewhere = await consent_token(metadata, demo, details(consent_id), resource="urn:dinhdanh:service:registry")
    assert elsewhere.json()["error"] == "invalid_target"


async def test_an_artefact_altered_in_the_database_gets_no_token(
    metadata: dict[str, Any], demo: Agency, consents: tuple[PostgresConsentStore, ConsentKey], pool: asyncpg.Pool
) -> None:
    consent_id = await artefact(consents, demo.client_id, max_fetches=10)
    assert (await consent_token(metadata, demo, details(consent_id))).status_code == 200  # verified, cached
    await pool.execute(
        "UPDATE consent.consents SET artefact = convert_to(replace(convert_from(artefact, 'UTF8'),"
        " '\"max_fetches\":10', '\"max_fetches\":999'), 'UTF8') WHERE id = $1",
        consent_id,
    )
    reply = await consent_token(metadata, demo, details(consent_id))
    assert (reply.status_code, reply.json()) == (400, {
        "error": "invalid_authorization_details", "error_description": "the consent cannot be verified"})  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '{"type": "consent", "consent_id": "5f0c1b7e-8f55-4d7e-9a3c-111111111111"}',  # an object, not an array
        "[]",
        '[{"type": "payment_initiation", "consent_id": "5f0c1b7e-8f55-4d7e-9a3c-111111111111"}]',
        '[{"type": "consent"}]',
        '[{"type": "consent", "consent_id": "not-a-uuid"}]',
        '[{"type": "consent", "consent_id": 42}]',
        '[{"consent_id": "5f0c1b7e-8f55-4d7e-9a3c-111111111111"}]',
        '[{"type": "consent", "consent_id": "5f0c1b7e-8f55-4d7e-9a3c-111111111111"},'
        ' {"type": "consent", "consent_id": "5f0c1b7e-8f55-4d7e-9a3c-222222222222"}]',
        '[{"type": "consent", "consent_id": "5f0c1b7e-8f55-4d7e-9a3c-111111111111", "purpose": "kyc"}]',
        '[{"type": "consent", "consent_id": "5f0c1b7e-8f55-4d7e-9a3c-111111111111", "locations": ["x"]}]',
    ],
)
async def test_malformed_authorization_details_are_invalid(metadata: dict[str, Any], demo: Agency, value: str) -> None:
    for mtls in (True, False):
        reply = await consent_token(metadata, demo, value, mtls=mtls)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"] == "invalid_authorization_details", reply.text


async def test_introspection_over_mtls_shows_the_binding_and_the_details(
    metadata: dict[str, Any], demo: Agency, consents: tuple[PostgresConsentStore, ConsentKey]
) -> None:
    consent_id = await artefact(consents, demo.client_id)
    token = (await consent_token(metadata, demo, details(consent_id))).json()["access_token"]  # tls_client_auth below
    async with httpx.AsyncClient(timeout=20, verify=demo.tls()) as http:
        reply = await http.post(metadata["mtls_endpoint_aliases"]["introspection_endpoint"],
                                data={"token": token, "client_id": demo.client_id})  # fmt: skip
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["active"] is True
    assert body["cnf"] == {"x5t#S256": demo.x5t()}
    assert body["authorization_details"][0]["consent_id"] == str(consent_id)
    async with httpx.AsyncClient(timeout=20, verify=demo.tls()) as http:
        revoked = await http.post(metadata["mtls_endpoint_aliases"]["revocation_endpoint"],
                                  data={"token": token, "client_id": demo.client_id})  # fmt: skip
        assert revoked.status_code == 200, revoked.text
        after = await http.post(metadata["mtls_endpoint_aliases"]["introspection_endpoint"],
                                data={"token": token, "client_id": demo.client_id})  # fmt: skip
    assert after.json() == {"active": False}
