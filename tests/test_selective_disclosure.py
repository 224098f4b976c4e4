"""Selective disclosure (issue 11 item 3): the citizen shares a certificate revealing only the claims chosen, as
an SD-JWT presentation (RFC 9901) bound to the holder key the portal holds for them (portal/holder.py), stored in
the citizen's vault and shared with one agency through a consent; the agency verifies it offline."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from bench.browserless import csrf_of
from core.errors import InvalidArgument
from core.keys.provider import KeyUnavailable
from core.keys.purposes import HOLDER_KEY
from issuance.issuer_keys import SigningKey
from portal import holder
from portal.settings import PortalSettings
from protos.vault.v1 import vault_pb2 as vpb
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack

VCT = "urn:dinhdanh:vct:criminal-record-certificate:1"


def _keys_dir(tmp_path: Path, master: bytes) -> Path:
    folder = tmp_path / "portal-keys"
    folder.mkdir()
    (folder / HOLDER_KEY).write_bytes(master)
    return folder


def _rfc5869(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 written from RFC 5869 §2.2-2.3 (no salt: HashLen zero bytes)."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def test_the_holder_key_is_hkdf_of_holder_key_over_the_sub_deterministic_and_per_citizen(tmp_path: Path) -> None:
    master = os.urandom(32)
    settings = PortalSettings(keys_dir=_keys_dir(tmp_path, master))
    alice, bob = "sub-alice-pairwise", "sub-bob-pairwise"
    assert holder.derive_seed(master, alice) == _rfc5869(master, alice.encode())
    key = holder.holder_key(settings, alice)
    assert key.public_jwk == SigningKey.from_seed(_rfc5869(master, alice.encode())).public_jwk
    again = PortalSettings(keys_dir=settings.keys_dir)  # another process holding the same HOLDER_KEY
    assert holder.holder_public_jwk(again, alice) == key.public_jwk
    assert holder.holder_public_jwk(settings, bob)["x"] != key.public_jwk["x"]
    (tmp_path / "other").mkdir()
    other = PortalSettings(keys_dir=_keys_dir(tmp_path / "other", os.urandom(32)))
    assert holder.holder_public_jwk(other, alice)["x"] != key.public_jwk["x"]


def test_the_public_jwk_is_what_a_credentials_cnf_holds(tmp_path: Path) -> None:
    settings = PortalSettings(keys_dir=_keys_dir(tmp_path, os.urandom(32)))
    jwk = holder.holder_public_jwk(settings, "some-sub")
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert "d" not in jwk
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")


def test_no_holder_key_is_a_clear_refusal(tmp_path: Path) -> None:
    assert not holder.available(PortalSettings())
    with pytest.raises(KeyUnavailable, match="DINHDANH_KEYS_DIR"):
        holder.holder_public_jwk(PortalSettings(), "some-sub")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KeyUnavailable, match=HOLDER_KEY):
        holder.holder_key(PortalSettings(keys_dir=empty), "some-sub")
    settings = PortalSettings(keys_dir=_keys_dir(tmp_path, os.urandom(32)))
    assert holder.available(settings)
    for bad in ("", "x" * 256):
        with pytest.raises(InvalidArgument):
            holder.holder_key(settings, bad)


# -- the vault keeps an SD-JWT presentation as application/dc+sd-jwt -------------------------------------------


def _presentation(issuer: SigningKey, holder_key: SigningKey, **claims: object) -> str:
    from datetime import UTC, datetime

    from issuance.credentials import VCT_CRIMINAL_RECORD, issue_credential
    from issuance.presentations import present
    from issuance.status_list import StatusReference

    now = datetime.now(UTC)
    credential = issue_credential(
        issuer,
        issuer="http://localhost:8080",
        vct=VCT_CRIMINAL_RECORD,
        claims=claims or {"full_name": "Nguyễn Văn A", "criminal_record": "Không có án tích"},
        holder_jwk=holder_key.public_jwk,
        status=StatusReference(0, "http://localhost:8080/issuance/status/0"),
        issued_at=now,
    )
    return present(credential, holder_key, disclose=["full_name"], audience="agency-x", nonce="n-1", at=now)


def _sniff(data: bytes, chunk: int = 5) -> str:
    from vault.content_types import Sniffer

    sniffer = Sniffer()
    for start in range(0, len(data), chunk):
        sniffer.feed(data[start : start + chunk])
    return sniffer.finish()


def test_the_vault_recognises_an_sd_jwt_presentation_and_refuses_lookalikes() -> None:
    from vault.content_types import SD_JWT

    issuer, holder_key = SigningKey.generate(), SigningKey.generate()
    presentation = _presentation(issuer, holder_key)
    assert _sniff(presentation.encode()) == SD_JWT
    assert _sniff(presentation.rsplit("~", 1)[0].encode() + b"~") == SD_JWT  # an issued SD-JWT VC too
    header, rest = presentation.split(".", 1)
    plain_jwt = presentation.split("~", 1)[0]  # no disclosures, no ~: a JWT, not an SD-JWT
    other_typ = b64url_json({"alg": "ES256", "typ": "JWT"}) + "." + rest
    for bad in (plain_jwt, other_typ, presentation + "\n<script>", presentation.replace("~", "~ ", 1), "eyJ!!!.a.b~"):
        with pytest.raises(InvalidArgument, match="unsupported content type"):
            _sniff(bad.encode())
    assert header.startswith("eyJ")


def b64url_json(value: dict[str, str]) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# -- sharing through the vault and a consent, against the stack ------------------------------------------------

CLAIMS: dict[str, object] = {
    "form": 1,
    "certificate_number": "LLTP-TEST-0001",
    "full_name": "Nguyễn Văn Thử",
    "birthdate": "1990-05-17",
    "place_of_birth": "Xã Đông Hội, huyện Đông Anh, Hà Nội",
    "father_name": "Nguyễn Văn Cha",
    "mother_name": "Trần Thị Mẹ",
    "id_number": "001090012345",
    "criminal_record": "Không có án tích",
    "convictions": [],
}
CHOSEN = ("criminal_record", "full_name")


def _issued(issuer: SigningKey, holder_jwk: dict[str, object]) -> str:
    """An SD-JWT VC as issuance.credentials issues it (the issuance service's own path is tested elsewhere)."""
    from datetime import UTC, datetime

    from issuance.credentials import VCT_CRIMINAL_RECORD, issue_credential
    from issuance.status_list import StatusReference

    return issue_credential(
        issuer,
        issuer="http://localhost:8080",
        vct=VCT_CRIMINAL_RECORD,
        claims=CLAIMS,
        holder_jwk=holder_jwk,
        status=StatusReference(7, "http://localhost:8080/issuance/status/0"),
        issued_at=datetime.now(UTC),
    )


def _portal_holder_key(stack: object, id_number: str) -> SigningKey:
    """The key the running portal holds for this citizen: HOLDER_KEY of its key folder over the citizen's sub."""
    from core.keys.purposes import OIDC_SUBJECT
    from identity.oidc.subjects import Subjects

    sub = Subjects(stack.secrets.keys("edge").key(OIDC_SUBJECT)).subject(id_number)  # type: ignore[attr-defined]
    return holder.derive_key(stack.secrets.keys("portal").key(HOLDER_KEY), sub)  # type: ignore[attr-defined]


def _verify(presentation: str, jwks: dict[str, object], audience: str, nonce: str) -> object:
    from datetime import UTC, datetime, timedelta

    from issuance.verify import verify_presented

    return verify_presented(
        presentation, issuer_jwks=jwks, at=datetime.now(UTC), audience=audience, nonce=nonce,
        max_age=timedelta(days=30),
    )  # fmt: skip


async def test_a_shared_presentation_reveals_the_chosen_claims_only_to_the_agency_under_its_consent(
    stack: Stack, info: StackInfo, http: httpx.AsyncClient, fresh_citizen: Citizen, tmp_path: Path
) -> None:
    import datetime as dt
    import json as jsonlib
    import subprocess
    import sys

    from issuance.verify import Outcome
    from portal import disclosure
    from protos.consent.v1 import consent_pb2_grpc as cgrpc
    from protos.vault.v1 import vault_pb2_grpc as vgrpc
    from tests.agency_fetch_helpers import Consents, download_shared, sign_in_citizen
    from tests.conftest import channel_as
    from tests.consent_agency_helpers import DemoAgency

    citizen = await sign_in_citizen(http, info, fresh_citizen)
    issuer = SigningKey.generate()
    key = _portal_holder_key(stack, fresh_citizen.id_number)
    credential = _issued(issuer, key.public_jwk)
    agency = DemoAgency.of(info)
    terms = disclosure.ShareTerms(CHOSEN, agency.client_id, "EMPLOYMENT_BACKGROUND_CHECK", days=7, max_fetches=5,
                                  per_day=5, data_life_days=30)  # fmt: skip
    call = {"metadata": (("authorization", f"Bearer {citizen.token}"),), "timeout": 30}
    async with channel_as(stack, "vault", "portal") as vault_channel, channel_as(stack, "consent", "portal") as cc:
        vault, consents = vgrpc.VaultStub(vault_channel), cgrpc.ConsentStub(cc)
        with pytest.raises(InvalidArgument, match="holder key"):  # a credential bound to someone else's key
            await disclosure.share(vault, consents, call, credential=_issued(issuer, SigningKey.generate().public_jwk),
                                   vct=VCT, holder_key=key, terms=terms, now=dt.datetime.now(dt.UTC))  # fmt: skip
        shared = await disclosure.share(vault, consents, call, credential=credential, vct=VCT, holder_key=key,
                                        terms=terms, now=dt.datetime.now(dt.UTC))  # fmt: skip
        versions = await vault.ListVersions(vpb.ListVersionsRequest(id=shared.document_id), **call)
    assert [v.content_type for v in versions.versions] == ["application/dc+sd-jwt", "application/json"]
    assert shared.claims == CHOSEN

    # The agency fetches it under the consent: exactly the presentation, nothing else.
    token = await agency.token(info, shared.consent_id)
    async with agency.vault(info) as channel:
        fetched = await download_shared(channel, token, shared.document_id)
    assert fetched.code == grpc.StatusCode.OK, fetched.details
    presentation = fetched.content.decode("ascii")
    assert presentation == shared.presentation
    assert fetched.metadata is not None
    assert fetched.metadata.content_type == "application/dc+sd-jwt"
    jwks = issuer.jwks()
    verdict = _verify(presentation, jwks, agency.client_id, shared.consent_id)
    assert verdict.outcome is Outcome.VALID, verdict.reason  # type: ignore[attr-defined]
    assert set(verdict.fields) == set(CHOSEN)  # type: ignore[attr-defined]
    assert sorted(disclosure.presented_claims(presentation)) == sorted(CHOSEN)
    for hidden in ("place_of_birth", "father_name", "mother_name", "birthdate", "id_number"):
        assert str(CLAIMS[hidden]) not in _decoded(presentation)

    # The verifier's command line: VALID with only the chosen fields; another nonce or audience is refused.
    keys = tmp_path / "issuer.jwks"
    keys.write_text(jsonlib.dumps(jwks))
    item = tmp_path / "presentation.sd-jwt"
    item.write_bytes(fetched.content)

    def verify_cli(audience: str, nonce: str) -> tuple[int, dict[str, object]]:
        args = ["verify", str(item), "--keys", str(keys), "--audience", audience, "--nonce", nonce,
                "--max-age", str(7 * 86400), "--json"]  # fmt: skip
        run = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120)
        return run.returncode, jsonlib.loads(run.stdout)

    code, shown = verify_cli(agency.client_id, shared.consent_id)
    assert (code, shown["outcome"]) == (0, "valid"), shown
    assert set(shown["fields"]) == set(CHOSEN)  # type: ignore[arg-type]
    assert verify_cli(agency.client_id, "another-consent")[0] == 1
    assert verify_cli("another-agency", shared.consent_id)[0] == 1

    # Once the citizen revokes the consent, the agency's next fetch is refused.
    async with channel_as(stack, "consent", "edge") as channel:
        await Consents(channel).change(citizen, "Revoke", shared.consent_id)
    async with agency.vault(info) as channel:
        refused = await download_shared(channel, token, shared.document_id)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.reason in ("NOT_ACTIVE", "EXPIRED"), refused.details


def _decoded(presentation: str) -> str:
    """Every part of a presentation decoded as text, so a value hidden in any Disclosure would be found."""
    import base64

    out = []
    for part in presentation.replace(".", "~").split("~"):
        if part:
            out.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8", "replace"))
    return "\n".join(out)


def test_a_tampered_presentation_does_not_verify() -> None:
    """Another holder key, another audience or nonce, an added, dropped or altered Disclosure: INVALID."""
    from datetime import UTC, datetime

    from issuance.presentations import key_binding_jwt, present
    from issuance.verify import Outcome
    from portal import disclosure

    issuer, key = SigningKey.generate(), SigningKey.generate()
    credential = _issued(issuer, key.public_jwk)
    now = datetime.now(UTC)
    good = present(credential, key, disclose=CHOSEN, audience="agency-a", nonce="consent-1", at=now)
    jwks = issuer.jwks()
    assert _verify(good, jwks, "agency-a", "consent-1").outcome is Outcome.VALID  # type: ignore[attr-defined]
    assert "place_of_birth" not in disclosure.presented_claims(good)
    head = good.rsplit("~", 1)[0] + "~"
    stolen = head + key_binding_jwt(SigningKey.generate(), head, audience="agency-a", nonce="consent-1", at=now)
    all_parts = credential.split("~")
    birthplace = next(d for d in all_parts[1:-1] if "place_of_birth" in _decoded(d))
    resigned = head + birthplace + "~"
    added = resigned + key_binding_jwt(key, resigned, audience="agency-a", nonce="consent-1", at=now)
    widened = head + birthplace + "~" + good.rsplit("~", 1)[1]  # a Disclosure added after the holder signed
    first = head.split("~")[1]
    altered = head.replace(first, b64url_json_list(["salt", "criminal_record", "Có án tích"])) + good.rsplit("~", 1)[1]
    for bad, audience, nonce in (
        (stolen, "agency-a", "consent-1"),
        (good, "agency-b", "consent-1"),
        (good, "agency-a", "consent-2"),
        (widened, "agency-a", "consent-1"),
        (altered, "agency-a", "consent-1"),
    ):
        verdict = _verify(bad, jwks, audience, nonce)
        assert verdict.outcome is Outcome.INVALID, (verdict.reason, audience, nonce)  # type: ignore[attr-defined]
    # A holder who re-signs with the birthplace added shows it, but it is what they chose: still their key.
    assert _verify(added, jwks, "agency-a", "consent-1").outcome is Outcome.VALID  # type: ignore[attr-defined]


def b64url_json_list(value: list[str]) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# -- through the portal: an issued certificate, shared selectively, fetched and verified by the agency ---------

SHARE_CONSENT = re.compile(r'id="shared-consent">([0-9a-f-]{36})<')
SHARE_DOCUMENT = re.compile(r'id="shared-document">([0-9a-f-]{36})<')
SHARED_CLAIM = re.compile(r'data-claim="([a-z_]+)"')
PURPOSE_OPTION = re.compile(r'<option value="([A-Z0-9_]+)"')
REQUEST_ID = re.compile(r'name="request_id" value="([^"]+)"')
VAULT_LINK = re.compile(r'href="/vault/([0-9a-f-]{36})"')


def _cli(*args: str) -> tuple[int, dict[str, object]]:
    import json as jsonlib
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "cli.main", *args, "--json"], capture_output=True, text=True,
                         timeout=180)  # fmt: skip
    assert run.stdout.count("\n") == 1, run.stdout + run.stderr
    return run.returncode, jsonlib.loads(run.stdout)


async def test_the_citizen_shares_chosen_fields_of_an_issued_certificate_through_the_portal(
    stack: Stack, info: StackInfo, http: httpx.AsyncClient, fresh_citizens: Iterator[Citizen], tmp_path: Path
) -> None:
    import json as jsonlib

    from issuance.judicial import seed_record
    from tests.consent_agency_helpers import DemoAgency
    from tests.oidc_helpers import person
    from tests.portal_vault_helpers import vault_session
    from tests.test_oidc_assurance import level_2
    from tests.waiting import until

    citizen = next(c for c in fresh_citizens if not seed_record(c).convictions)  # auto-approved: a clean record
    browser, _ = await vault_session(http, info, await level_2(info, await person(info, citizen)))
    portal = info.demo_portal.rstrip("/")
    form = await browser.follow("GET", f"{portal}/certificates/new?form=1")
    assert form.status_code == 200, form.text[:300]
    purpose = PURPOSE_OPTION.findall(form.text)[0]
    request_id = REQUEST_ID.search(form.text)
    assert request_id is not None
    applied = await browser.follow("POST", f"{portal}/certificates/new", data={
        "csrf": csrf_of(form), "request_id": request_id.group(1), "form": "1", "purpose": purpose, "copies": "1",
        "delivery": "electronic", "ban_certification": "no", "email": "thu@example.vn"})  # fmt: skip
    assert applied.status_code == 200, applied.text[:300]
    dossier_url = str(applied.url).split("?", 1)[0]
    dossier_id = dossier_url.rsplit("/", 1)[1]

    async def issued() -> httpx.Response | None:
        page = await browser.follow("GET", dossier_url)
        return page if 'id="share"' in page.text and 'id="vault-document"' in page.text else None  # and delivered

    dossier = await until(issued, "the certificate issued", timeout=240, every=1.0)
    pdf_link = VAULT_LINK.search(dossier.text)

    share = await browser.follow("GET", f"{dossier_url}/share")
    assert share.status_code == 200, share.text[:300]
    assert 'value="place_of_birth"' in share.text  # offered, and left unticked
    agency = DemoAgency.of(info)
    request_id = REQUEST_ID.search(share.text)
    assert request_id is not None
    fields = {"csrf": csrf_of(share), "request_id": request_id.group(1), "claim": list(CHOSEN),
              "client_id": agency.client_id, "purpose": "EMPLOYMENT_BACKGROUND_CHECK", "days": "7",
              "max_fetches": "5", "per_day": "5", "data_life_days": "30"}  # fmt: skip
    # A triple click: three parallel submissions of the one form make one sharing (one consent, one receipt).
    posted = await asyncio.gather(*(browser.request("POST", f"{dossier_url}/share", data=fields) for _ in range(3)))
    assert [reply.status_code for reply in posted] == [303] * 3, [reply.text[:300] for reply in posted]
    assert len({reply.headers["location"] for reply in posted}) == 1
    done = await browser.follow("GET", f"{portal}{posted[0].headers['location']}")
    assert done.status_code == 200, done.text[:400]
    consent, document = SHARE_CONSENT.search(done.text), SHARE_DOCUMENT.search(done.text)
    assert consent is not None
    assert document is not None
    consent_id, document_id = consent.group(1), document.group(1)
    assert sorted(SHARED_CLAIM.findall(done.text)) == sorted(CHOSEN)
    assert citizen.id_number not in done.text

    # The agency fetches it with its bound consent token; the fetch verifies it with the platform's published keys.
    out = tmp_path / "shared.sd-jwt"
    code, fetched = _cli("agency", "fetch", consent_id, document_id, "--out", str(out), "--var", str(stack.var))
    assert code == 0, fetched
    assert fetched["content_type"] == "application/dc+sd-jwt"
    verification = fetched["verification"]
    assert isinstance(verification, dict)
    assert verification["outcome"] == "valid", verification
    assert set(verification["fields"]) == set(CHOSEN)
    text = out.read_text()
    for hidden in (citizen.date_of_birth.isoformat(), citizen.id_number, citizen.hometown):
        assert hidden not in _decoded(text)
    metadata = (await http.get(f"{info.oidc_issuer}/.well-known/jwt-vc-issuer")).json()
    keys = tmp_path / "issuer.jwks"
    keys.write_text(jsonlib.dumps(metadata["jwks"]))
    code, verdict = _cli("verify", str(out), "--keys", str(keys), "--audience", agency.client_id, "--nonce",
                         consent_id, "--max-age", "3600")  # fmt: skip
    assert (code, verdict["outcome"]) == (0, "valid"), verdict
    assert set(verdict["fields"]) == set(CHOSEN)  # type: ignore[arg-type]

    # The consent covers the presentation only: the certificate's PDF is refused to the agency.
    assert pdf_link is not None
    code, refused = _cli("agency", "fetch", consent_id, pdf_link.group(1), "--out", str(tmp_path / "x.pdf"),
                         "--var", str(stack.var))  # fmt: skip
    assert code == 1
    assert refused.get("reason") == "DOCUMENT_NOT_IN_GRANT", refused

    # The citizen revokes the consent in the portal: the agency's next fetch is refused.
    consents = await browser.follow("GET", f"{portal}/consents")
    revoked = await browser.follow("POST", f"{portal}/consents/{consent_id}/revoke", data={"csrf": csrf_of(consents)})
    assert revoked.status_code == 200, revoked.text[:300]
    code, refused = _cli("agency", "fetch", consent_id, document_id, "--out", str(tmp_path / "y"), "--var",
                         str(stack.var))  # fmt: skip
    assert code == 1
    assert refused.get("code") in ("invalid_authorization_details", "PERMISSION_DENIED"), refused
    assert dossier_id


def test_each_portal_is_handed_the_holder_key_only(stack: Stack) -> None:
    """Least privilege: the portal's key folder (DINHDANH_KEYS_DIR) holds HOLDER_KEY and nothing else."""
    from core.keys.files import FileKeyProvider
    from stack import web

    for name, _ in web.PORTALS:
        env = stack.services[name].env
        assert env is not None
        assert FileKeyProvider.in_folder(Path(env["DINHDANH_KEYS_DIR"])).purposes == {HOLDER_KEY}


def test_the_share_form_offers_each_claim_with_its_vietnamese_label() -> None:
    from portal import disclosure

    issuer, key = SigningKey.generate(), SigningKey.generate()
    credential = _issued(issuer, key.public_jwk)
    offered = {claim.name: claim for claim in disclosure.claims_of(credential)}
    assert set(offered) == set(CLAIMS)
    assert offered["criminal_record"].label == "Tình trạng án tích"
    assert offered["place_of_birth"].label == "Nơi sinh"
    assert offered["criminal_record"].value == "Không có án tích"
    assert offered["convictions"].value == "—"
    with pytest.raises(InvalidArgument):
        disclosure.claims_of("not an sd-jwt")
    assert b"Nguy" not in disclosure.placeholder()  # the placeholder holds no personal data
