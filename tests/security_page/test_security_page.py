"""The citizen's security page (issue 13 §5) against the real stack: the sign-in history from the transparency log
with its proofs, sign out everywhere, factor changes behind a step-up, and the lock of password sign-in."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import grpc
import httpx
import pytest

from audit import verify
from audit.events import Pseudonymizer
from bench.browserless import Browser, SignIn, callback_params, csrf_of, pkce_pair, sign_in
from core.keys import purposes
from identity import totp
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.identity.v1 import passkeys_pb2 as ppb
from protos.identity.v1 import passkeys_pb2_grpc as pgrpc
from protos.identity.v1 import security_pb2 as spb
from protos.identity.v1 import security_pb2_grpc as sgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.oidc_helpers import PASSWORD, person, portal_flow
from tests.passkeys.authenticator import SoftAuthenticator
from tests.test_cli import dinhdanh
from tests.waiting import until

ORIGIN = "dinhdanh.gov.vn/log"
ROW = re.compile(r'<tr class="entry"([^>]*)>')
ATTR = re.compile(r'data-([a-z]+)="([^"]*)"')
PROOF = re.compile(r"<pre>(.*?)</pre>", re.S)
SIGN_IN = ("identity.password", "identity.totp", "identity.authenticate")


class Codes:
    """A citizen's TOTP codes, each step once (the enrollment used the step it ran in), waiting when one is due."""

    def __init__(self, secret: str, last: int | None = None) -> None:
        self.secret = secret
        self.last = totp.current_step() if last is None else last

    async def next(self) -> str:
        step = self.last + 1
        wait = (step - 1) * totp.STEP - time.time()  # accepted within one step of now (RFC 6238 §5.2)
        if wait > 0:
            await asyncio.sleep(wait + 0.2)
        self.last = step
        return totp.code_at(self.secret, step * totp.STEP + 1)


@dataclass
class Citizen2:
    id_number: str
    codes: Codes


async def account(info: StackInfo, citizen: Citizen) -> Citizen2:
    who = await person(info, citizen)
    return Citizen2(who.id_number, Codes(who.totp_secret))


async def browse(http: httpx.AsyncClient, flow: SignIn, who: Citizen2) -> tuple[Browser, dict[str, str]]:
    browser = Browser(http)
    params = await sign_in(browser, flow, who.id_number, PASSWORD, await who.codes.next())
    assert "code" in params, params
    return browser, params


def entries(page: httpx.Response) -> list[dict[str, str]]:
    """The history's rows, newest first, as their data attributes."""
    return [dict(ATTR.findall(attrs)) for attrs in ROW.findall(page.text)]


async def security(browser: Browser, info: StackInfo) -> httpx.Response:
    page = await browser.request("GET", f"{info.oidc_issuer}/security")
    assert page.status_code == 200, page.text[:500]
    return page


async def session_alive(browser: Browser, flow: SignIn) -> bool:
    _, challenge = pkce_pair()
    quiet = SignIn(flow.issuer, flow.client_id, flow.client_secret, flow.redirect_uri, flow.scope, {"prompt": "none"})
    params = callback_params(await browser.request("GET", quiet.authorize_url("s", "n", challenge)))
    return "code" in params


async def test_history_lists_two_portals_sign_ins_and_a_failure_in_order_with_proofs(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await account(info, fresh_citizen)
    first, second = portal_flow(info, "portal"), portal_flow(info, "portal_2")
    browser, _ = await browse(http, first, who)
    other = Browser(http)
    refused = await sign_in(other, second, who.id_number, "Không phải mật khẩu 2026", "000000")
    assert "code" not in refused
    again = await sign_in(other, second, who.id_number, PASSWORD, await who.codes.next())
    assert "code" in again, again

    async def listed() -> list[dict[str, str]] | None:
        page = await security(browser, info)
        rows = [r for r in entries(page) if r["action"] in SIGN_IN and r["client"]]
        return rows if len(rows) >= 5 and 'data-pending="0"' in page.text else None

    rows = list(reversed(await until(listed, "the five sign-in events in the page's history", timeout=30, every=0.5)))
    a, b = first.client_id, second.client_id
    assert [(r["action"], r["outcome"], r["factor"], r["client"]) for r in rows] == [
        ("identity.password", "success", "pwd", a),
        ("identity.authenticate", "success", "pwd+otp", a),
        ("identity.password", "failure", "pwd", b),
        ("identity.password", "success", "pwd", b),
        ("identity.authenticate", "success", "pwd+otp", b),
    ]
    assert all(r["verified"] == "yes" for r in rows)
    assert rows[0]["source"] == rows[1]["source"]  # one browser: one device (or one address)
    assert rows[3]["source"] == rows[4]["source"]
    assert all(re.fullmatch(r"(device|address)-[0-9a-f]{16}", r["source"]) for r in rows)
    page = await security(browser, info)
    assert who.id_number not in page.text
    # the offered proof verifies offline, with the log's published key alone
    vkey = verify.Key.parse((await http.get(f"{info.oidc_issuer}/log/key")).text)
    proof = json.loads(html.unescape(PROOF.findall(page.text)[0]))
    checkpoint = verify.checkpoint(proof["checkpoint"], vkey, ORIGIN)
    assert verify.inclusion(proof, checkpoint) == int(entries(page)[0]["index"])
    english = await browser.request("GET", f"{info.oidc_issuer}/security?lang=en")
    assert "Sign-in history" in english.text
    assert "Lịch sử đăng nhập" in page.text


async def test_sign_out_everywhere_ends_parallel_sessions_and_their_refresh_tokens(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng bảo mật có làm mới",
                          "--redirect-uri", "https://baomat.example/callback", "--refresh")  # fmt: skip
    assert code == 0, made
    bound = SignIn(info.oidc_issuer, made["client_id"], made["client_secret"], "https://baomat.example/callback",
                   "openid")  # fmt: skip
    who = await account(info, fresh_citizen)
    signed = [await browse(http, bound, who), await browse(http, bound, who)]
    refresh = []
    for _, params in signed:
        tokens = (await bound.redeem(http, params["code"], params["_verifier"])).json()
        refresh.append(tokens["refresh_token"])
    (one, _), (two, _) = signed
    page = await security(one, info)
    assert page.text.count('<tr class="session"') == 2
    forged = await one.request("POST", f"{info.oidc_issuer}/security/sign-out-everywhere", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert await session_alive(two, bound)
    mine = csrf_of(page)
    theirs = await two.request("POST", f"{info.oidc_issuer}/security/sign-out-everywhere", data={"csrf": mine})
    assert theirs.status_code == 403  # the token is bound to the session that showed the page
    out = await one.request("POST", f"{info.oidc_issuer}/security/sign-out-everywhere", data={"csrf": mine})
    assert out.status_code == 200, out.text[:300]
    assert not await session_alive(one, bound)
    assert not await session_alive(two, bound)
    for token in refresh:
        reply = await http.post(f"{info.oidc_issuer}/token", auth=(bound.client_id, bound.client_secret),
                                data={"grant_type": "refresh_token", "refresh_token": token})  # fmt: skip
        assert (reply.status_code, reply.json()["error"]) == (400, "invalid_grant")
    again = await one.request("GET", f"{info.oidc_issuer}/security")
    assert again.status_code == 303  # sign in again first
    assert again.headers["location"] == "/login"
    refs = Pseudonymizer(stack.secrets.keys("log").key(purposes.AUDIT_PSEUDONYM))
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        recorded = await conn.fetchrow(
            "SELECT actor, detail FROM audit.events WHERE action = 'security.sign_out_everywhere' AND subject = $1",
            refs.ref(who.id_number),
        )
    finally:
        await conn.close()
    assert recorded is not None
    assert recorded["actor"] == "service:edge"
    assert json.loads(recorded["detail"])["sessions"] == 2
    # the page's own sign-in (for no portal): the login pages, then back to the page
    login = await one.follow("GET", f"{info.oidc_issuer}/security")
    form = {"csrf": csrf_of(login), "id_number": who.id_number, "password": PASSWORD}
    step = await one.follow("POST", f"{info.oidc_issuer}/login", data=form)
    back = await one.request("POST", f"{info.oidc_issuer}/login/totp",
                             data={"csrf": csrf_of(step), "code": await who.codes.next()})  # fmt: skip
    assert back.status_code == 303
    assert back.headers["location"] == "/security"
    assert (await security(one, info)).text.count('<tr class="session"') == 1


async def test_totp_re_enrolment_needs_a_step_up_and_replaces_the_secret(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await account(info, fresh_citizen)
    browser, _ = await browse(http, portal_flow(info), who)
    page = await security(browser, info)
    csrf = csrf_of(page)
    for missing in ({"csrf": csrf}, {"csrf": csrf, "code": "123456"}):  # no step-up, a wrong one
        refused = await browser.request("POST", f"{info.oidc_issuer}/security/totp", data=missing)
        assert refused.status_code == 303
        assert "error=wrong_code" in refused.headers["location"]
    shown = await browser.request("POST", f"{info.oidc_issuer}/security/totp",
                                  data={"csrf": csrf, "code": await who.codes.next()})  # fmt: skip
    assert shown.status_code == 200, shown.text[:300]
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', shown.text).group(1)  # type: ignore[union-attr]
    assert secret != who.codes.secret
    confirm = await browser.request("POST", f"{info.oidc_issuer}/security/totp/confirm",
                                    data={"csrf": csrf_of(shown), "code": totp.code_at(secret)})  # fmt: skip
    assert confirm.headers["location"].endswith("?done=totp_replaced")
    old = who.codes
    who.codes = Codes(secret, totp.current_step())
    fresh = Browser(http)
    params = await sign_in(fresh, portal_flow(info), who.id_number, PASSWORD, await old.next())
    assert "code" not in params  # the old secret's codes no longer sign in
    assert "code" in await sign_in(Browser(http), portal_flow(info), who.id_number, PASSWORD, await who.codes.next())


async def test_a_step_up_code_works_once_under_parallel_use(
    info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    who = await account(info, fresh_citizen)
    code = await who.codes.next()
    async with channel_as(stack, "identity", "edge") as channel:
        security = sgrpc.AccountSecurityStub(channel)
        tries = [spb.StepUpRequest(id_number=who.id_number, code=code, source=f"test-step-{i}",
                                   purpose="passkey.remove") for i in range(4)]  # fmt: skip
        results = await asyncio.gather(*(security.StepUp(t, timeout=20) for t in tries), return_exceptions=True)
    assert sum(isinstance(r, spb.StepUpResponse) for r in results) == 1
    refusals = {r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)}  # used, or one at a time (lease)
    assert refusals <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert len(results) == 4


async def test_password_lock_refuses_sign_in_until_the_citizen_lifts_it(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await account(info, fresh_citizen)
    browser, _ = await browse(http, portal_flow(info), who)
    page = await security(browser, info)
    locked = await browser.request("POST", f"{info.oidc_issuer}/security/password-lock", data={"csrf": csrf_of(page)})
    assert locked.headers["location"].endswith("?done=locked")
    page = await security(browser, info)
    assert 'id="locked"' in page.text
    stranger = Browser(http)
    refused = await sign_in(stranger, portal_flow(info), who.id_number, PASSWORD, "000000")
    assert "code" not in refused
    login = await stranger.request("GET", f"{info.oidc_issuer}/login")
    posted = await stranger.request("POST", f"{info.oidc_issuer}/login",
                                    data={"csrf": csrf_of(login), "id_number": who.id_number,
                                          "password": PASSWORD})  # fmt: skip
    assert posted.status_code == 401
    assert "khóa đăng nhập bằng mật khẩu" in posted.text  # the login page says why (vi by default)
    no_step_up = await browser.request("POST", f"{info.oidc_issuer}/security/password-unlock",
                                       data={"csrf": csrf_of(page), "code": "000000"})  # fmt: skip
    assert "error=wrong_code" in no_step_up.headers["location"]
    assert 'id="locked"' in (await security(browser, info)).text
    unlocked = await browser.request("POST", f"{info.oidc_issuer}/security/password-unlock",
                                     data={"csrf": csrf_of(page), "code": await who.codes.next()})  # fmt: skip
    assert unlocked.headers["location"].endswith("?done=unlocked")
    assert "code" in await sign_in(Browser(http), portal_flow(info), who.id_number, PASSWORD, await who.codes.next())


async def test_an_operator_lifts_the_lock_of_a_level_2_account_only(
    info: StackInfo, stack: Stack, fresh_citizens: Iterator[Citizen]
) -> None:
    one, two = await account(info, next(fresh_citizens)), await account(info, next(fresh_citizens))
    async with channel_as(stack, "identity", "edge") as channel:
        security = sgrpc.AccountSecurityStub(channel)
        for who in (one, two):
            state = await security.LockPassword(spb.LockPasswordRequest(id_number=who.id_number, source="test-lock"))
            assert state.password_locked
        with pytest.raises(grpc.aio.AioRpcError) as not_an_operator:
            await security.OperatorUnlockPassword(spb.OperatorUnlockPasswordRequest(id_number=one.id_number))
        assert not_an_operator.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with info.channel("identity") as operator:
        await igrpc.IdentityStub(operator).SetAssuranceLevel(
            ipb.SetAssuranceLevelRequest(id_number=two.id_number, level=2, note="Công an phường Bến Nghé"), timeout=20
        )
    code, refused = dinhdanh(stack, "accounts", "unlock-password", one.id_number, "--note", "tại trụ sở")
    assert code != 0
    assert "PERMISSION_DENIED" in refused["error"]
    code, lifted = dinhdanh(stack, "accounts", "unlock-password", two.id_number, "--note", "tại trụ sở")
    assert code == 0, lifted
    assert lifted["password_locked"] is False


async def test_passkey_removal_needs_a_step_up_and_totp_stays(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    who = await account(info, fresh_citizen)
    async with channel_as(stack, "identity", "edge") as channel:
        passkeys = pgrpc.PasskeysStub(channel)
        options = await passkeys.StartRegistration(ppb.StartRegistrationRequest(id_number=who.id_number, source="t"))
        device = SoftAuthenticator(info.oidc_issuer)
        await passkeys.FinishRegistration(ppb.FinishRegistrationRequest(
            id_number=who.id_number, handle=options.handle, credential_json=device.create(options.options_json),
            name="Khóa thử", source="t"))  # fmt: skip
    browser, _ = await browse(http, portal_flow(info), who)
    page = await security(browser, info)
    assert page.text.count('<tr class="passkey">') == 1
    assert 'href="/security/passkeys"' in page.text  # the enrolment page (services/edge/passkey_routes.py)
    credential = re.search(r'name="credential_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"csrf": csrf_of(page), "credential_id": credential}
    for code in ("", "000000"):
        remove = f"{info.oidc_issuer}/security/passkeys/remove"
        refused = await browser.request("POST", remove, data={**form, "code": code})
        assert "error=wrong_code" in refused.headers["location"]
    assert (await security(browser, info)).text.count('<tr class="passkey">') == 1
    done = await browser.request("POST", f"{info.oidc_issuer}/security/passkeys/remove",
                                 data={**form, "code": await who.codes.next()})  # fmt: skip
    assert done.headers["location"].endswith("?done=passkey_removed")
    after = await security(browser, info)
    assert '<tr class="passkey">' not in after.text
    assert "/security/totp" in after.text  # TOTP remains: re-enrol only, never removed
