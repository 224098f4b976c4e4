"""The identity service's passkeys (identity/passkeys.py) over gRPC as the edge calls them, on the real stack
(PostgreSQL): registration and sign-in with a software authenticator, the flags and counters recorded, and
every refusal WebAuthn L3 §7.1/§7.2 asks for: a challenge used twice (also in parallel), another origin or
RP ID, a counter going backwards (§6.1.1), passwordless for a level-1 account, a caller other than the edge."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator

import grpc
import pytest

from identity.passkeys import MAX_LIVE_CHALLENGES
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.identity.v1 import passkeys_pb2 as pb
from protos.identity.v1 import passkeys_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.identity_calls import activate, password_step, refused
from tests.passkeys.authenticator import SoftAuthenticator

_sources = itertools.count()


@pytest.fixture(scope="module")
async def passkeys(stack: Stack) -> AsyncIterator[pb_grpc.PasskeysStub]:
    async with channel_as(stack, "identity", "edge") as channel:
        yield pb_grpc.PasskeysStub(channel)


@pytest.fixture(scope="module")
async def identity(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    async with channel_as(stack, "identity", "edge") as channel:
        yield channel


@pytest.fixture
def src() -> str:
    return f"passkey-device-{next(_sources)}"


async def registered(
    passkeys: pb_grpc.PasskeysStub, id_number: str, source: str, authenticator: SoftAuthenticator
) -> pb.Passkey:
    options = await passkeys.StartRegistration(pb.StartRegistrationRequest(id_number=id_number, source=source))
    credential = authenticator.create(options.options_json)
    return await passkeys.FinishRegistration(
        pb.FinishRegistrationRequest(
            id_number=id_number,
            handle=options.handle,
            credential_json=credential,
            name="  Điện thoại   của tôi ",
            source=source,
        )
    )


async def second_factor(
    passkeys: pb_grpc.PasskeysStub,
    identity: grpc.aio.Channel,
    id_number: str,
    source: str,
    authenticator: SoftAuthenticator,
    **assertion: object,
) -> ipb.Authentication:
    ticket = (await password_step(identity, id_number, source)).ticket
    options = await passkeys.StartAuthentication(pb.StartAuthenticationRequest(ticket=ticket, source=source))
    credential = authenticator.get(options.options_json, **assertion)  # type: ignore[arg-type]
    return await passkeys.FinishAuthentication(
        pb.FinishAuthenticationRequest(handle=options.handle, credential_json=credential, source=source, ticket=ticket)
    )


async def passwordless(
    passkeys: pb_grpc.PasskeysStub, source: str, authenticator: SoftAuthenticator
) -> ipb.Authentication:
    options = await passkeys.StartAuthentication(pb.StartAuthenticationRequest(passwordless=True, source=source))
    assert json.loads(options.options_json)["userVerification"] == "required"
    assert json.loads(options.options_json).get("allowCredentials", []) == []
    credential = authenticator.get(options.options_json)
    return await passkeys.FinishAuthentication(
        pb.FinishAuthenticationRequest(handle=options.handle, credential_json=credential, source=source)
    )


async def test_device_bound_passkey_as_second_factor(
    passkeys: pb_grpc.PasskeysStub, identity: grpc.aio.Channel, info: StackInfo, fresh_citizen: Citizen, src: str
) -> None:
    await activate(identity, fresh_citizen, src)
    device = SoftAuthenticator(info.oidc_issuer)
    options = await passkeys.StartRegistration(
        pb.StartRegistrationRequest(id_number=fresh_citizen.id_number, source=src)
    )
    creation = json.loads(options.options_json)
    assert creation["rp"]["id"] == "localhost"
    assert creation["authenticatorSelection"]["residentKey"] == "required"
    assert fresh_citizen.id_number not in options.options_json  # the user name is the masked number
    passkey = await registered(passkeys, fresh_citizen.id_number, src, device)
    assert (passkey.backup_eligible, passkey.backup_state, passkey.user_verified) == (False, False, True)
    assert passkey.name == "Điện thoại của tôi"
    assert sorted(passkey.transports) == ["hybrid", "internal"]
    result = await second_factor(passkeys, identity, fresh_citizen.id_number, src, device)
    assert list(result.amr) == ["pwd", "hwk", "user"]
    assert (result.id_number, result.assurance_level) == (fresh_citizen.id_number, 1)
    listed = (await passkeys.ListPasskeys(pb.ListPasskeysRequest(id_number=fresh_citizen.id_number))).passkeys
    assert [p.credential_id for p in listed] == [passkey.credential_id]
    assert listed[0].sign_count == 2
    assert listed[0].last_used_at
    # the same credential cannot be registered twice (it is excluded, and refused if sent anyway)
    again = await passkeys.StartRegistration(pb.StartRegistrationRequest(id_number=fresh_citizen.id_number, source=src))
    assert json.loads(again.options_json)["excludeCredentials"][0]["id"] == passkey.credential_id
    await refused(
        passkeys.FinishRegistration(
            pb.FinishRegistrationRequest(
                id_number=fresh_citizen.id_number,
                handle=again.handle,
                credential_json=device.create(again.options_json),
                source=src,
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_synced_passkey_flags_recorded_and_amr_swk(
    passkeys: pb_grpc.PasskeysStub, identity: grpc.aio.Channel, info: StackInfo, fresh_citizen: Citizen, src: str
) -> None:
    await activate(identity, fresh_citizen, src)
    synced = SoftAuthenticator(info.oidc_issuer, backup_eligible=True, backed_up=False, counter=None)
    passkey = await registered(passkeys, fresh_citizen.id_number, src, synced)
    assert (passkey.backup_eligible, passkey.backup_state) == (True, False)
    synced.backed_up = True  # the backup happened since: BS is recorded as last seen
    for _ in range(2):  # a counter that is always 0 (no counter kept) is accepted each time
        result = await second_factor(passkeys, identity, fresh_citizen.id_number, src, synced)
        assert list(result.amr) == ["pwd", "swk", "user"]
    listed = (await passkeys.ListPasskeys(pb.ListPasskeysRequest(id_number=fresh_citizen.id_number))).passkeys
    assert (listed[0].backup_eligible, listed[0].backup_state, listed[0].sign_count) == (True, True, 0)
    synced.backup_eligible = False  # §6.1.3: BE never changes for a credential
    synced.backed_up = False
    await refused(
        second_factor(passkeys, identity, fresh_citizen.id_number, src, synced), grpc.StatusCode.UNAUTHENTICATED
    )


async def test_counter_going_backwards_is_refused(
    passkeys: pb_grpc.PasskeysStub, identity: grpc.aio.Channel, info: StackInfo, fresh_citizen: Citizen, src: str
) -> None:
    await activate(identity, fresh_citizen, src)
    device = SoftAuthenticator(info.oidc_issuer, counter=10)
    await registered(passkeys, fresh_citizen.id_number, src, device)  # stored counter 11
    await second_factor(passkeys, identity, fresh_citizen.id_number, src, device, counter=20)
    for stale in (20, 12):  # the same value again, or below the stored one: a clone (§6.1.1)
        error = await refused(
            second_factor(passkeys, identity, fresh_citizen.id_number, src, device, counter=stale),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        assert "counter" in (error.details() or "")
    listed = (await passkeys.ListPasskeys(pb.ListPasskeysRequest(id_number=fresh_citizen.id_number))).passkeys
    assert listed[0].sign_count == 20
    await second_factor(passkeys, identity, fresh_citizen.id_number, src, device, counter=21)


async def test_challenge_is_single_use_even_in_parallel(
    passkeys: pb_grpc.PasskeysStub, identity: grpc.aio.Channel, info: StackInfo, fresh_citizen: Citizen, src: str
) -> None:
    await activate(identity, fresh_citizen, src)
    device = SoftAuthenticator(info.oidc_issuer)
    # registration: two credentials answering one challenge at once, one is stored
    options = await passkeys.StartRegistration(
        pb.StartRegistrationRequest(id_number=fresh_citizen.id_number, source=src)
    )
    other = SoftAuthenticator(info.oidc_issuer)
    finishes = [
        passkeys.FinishRegistration(
            pb.FinishRegistrationRequest(
                id_number=fresh_citizen.id_number,
                handle=options.handle,
                credential_json=a.create(options.options_json),
                source=src,
            )
        )
        for a in (device, other)
    ]
    outcomes = await asyncio.gather(*finishes, return_exceptions=True)
    assert sum(isinstance(o, pb.Passkey) for o in outcomes) == 1, outcomes
    assert all(o.code() == grpc.StatusCode.UNAUTHENTICATED for o in outcomes if isinstance(o, grpc.aio.AioRpcError))
    winner = device if isinstance(outcomes[0], pb.Passkey) else other
    # authentication: two valid assertions (growing counters) for one challenge at once, one signs in
    ticket = (await password_step(identity, fresh_citizen.id_number, src)).ticket
    start = await passkeys.StartAuthentication(pb.StartAuthenticationRequest(ticket=ticket, source=src))
    assertions = [winner.get(start.options_json) for _ in range(2)]
    calls = [
        passkeys.FinishAuthentication(
            pb.FinishAuthenticationRequest(handle=start.handle, credential_json=a, source=src, ticket=ticket)
        )
        for a in assertions
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, ipb.Authentication) for r in results) == 1, results
    assert all(r.code() == grpc.StatusCode.UNAUTHENTICATED for r in results if isinstance(r, grpc.aio.AioRpcError))
    # and afterwards, sequentially: the used challenge is gone
    await refused(
        passkeys.FinishAuthentication(
            pb.FinishAuthenticationRequest(
                handle=start.handle, credential_json=winner.get(start.options_json), source=src, ticket=ticket
            )
        ),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    # a challenge from another source (device) is not this one's
    start = await passkeys.StartAuthentication(pb.StartAuthenticationRequest(ticket=ticket, source=src))
    await refused(
        passkeys.FinishAuthentication(
            pb.FinishAuthenticationRequest(
                handle=start.handle,
                credential_json=winner.get(start.options_json),
                source=src + "-other",
                ticket=ticket,
            )
        ),
        grpc.StatusCode.UNAUTHENTICATED,
    )


async def test_wrong_origin_or_rp_id_is_refused(
    passkeys: pb_grpc.PasskeysStub, identity: grpc.aio.Channel, info: StackInfo, fresh_citizen: Citizen, src: str
) -> None:
    await activate(identity, fresh_citizen, src)
    phished = {"origin": "http://localhost.evil.example:8443"}, {"rp_id": "evil.example"}
    for wrong in phished:
        options = await passkeys.StartRegistration(
            pb.StartRegistrationRequest(id_number=fresh_citizen.id_number, source=src)
        )
        credential = SoftAuthenticator(info.oidc_issuer).create(options.options_json, **wrong)  # type: ignore[arg-type]
        await refused(
            passkeys.FinishRegistration(
                pb.FinishRegistrationRequest(
                    id_number=fresh_citizen.id_number, handle=options.handle, credential_json=credential, source=src
                )
            ),
            grpc.StatusCode.UNAUTHENTICATED,
        )
    device = SoftAuthenticator(info.oidc_issuer)
    await registered(passkeys, fresh_citizen.id_number, src, device)
    for wrong in phished:
        await refused(
            second_factor(passkeys, identity, fresh_citizen.id_number, src, device, **wrong),
            grpc.StatusCode.UNAUTHENTICATED,
        )
    await second_factor(passkeys, identity, fresh_citizen.id_number, src, device)


async def test_passwordless_only_for_level_2_and_with_user_verification(
    passkeys: pb_grpc.PasskeysStub, identity: grpc.aio.Channel, info: StackInfo, fresh_citizens: object, src: str
) -> None:
    citizen, stranger = next(fresh_citizens), next(fresh_citizens)  # type: ignore[call-overload]
    await activate(identity, citizen, src)
    await activate(identity, stranger, src)
    device = SoftAuthenticator(info.oidc_issuer)
    await registered(passkeys, citizen.id_number, src, device)
    error = await refused(passwordless(passkeys, src, device), grpc.StatusCode.PERMISSION_DENIED)
    assert "level 2" in (error.details() or "")
    async with info.channel("identity") as operator:
        await igrpc.IdentityStub(operator).SetAssuranceLevel(
            ipb.SetAssuranceLevelRequest(id_number=citizen.id_number, level=2, note="Công an phường Hàng Bạc")
        )
    result = await passwordless(passkeys, src, device)
    assert (result.id_number, result.assurance_level, list(result.amr)) == (citizen.id_number, 2, ["hwk", "user"])
    device.user_verifying = False  # passwordless requires user verification (a PIN or biometric)
    await refused(passwordless(passkeys, src, device), grpc.StatusCode.UNAUTHENTICATED)
    device.user_verifying = True
    # the citizen's passkey is not a second factor for another account's password
    await refused(
        second_factor(passkeys, identity, stranger.id_number, src, device), grpc.StatusCode.FAILED_PRECONDITION
    )
    await registered(passkeys, stranger.id_number, src, SoftAuthenticator(info.oidc_issuer))
    await refused(second_factor(passkeys, identity, stranger.id_number, src, device), grpc.StatusCode.UNAUTHENTICATED)
    # removal: then it signs in no more
    listed = (await passkeys.ListPasskeys(pb.ListPasskeysRequest(id_number=citizen.id_number))).passkeys
    await passkeys.RemovePasskey(
        pb.RemovePasskeyRequest(id_number=citizen.id_number, credential_id=listed[0].credential_id)
    )
    await refused(
        passkeys.RemovePasskey(
            pb.RemovePasskeyRequest(id_number=citizen.id_number, credential_id=listed[0].credential_id)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await refused(passwordless(passkeys, src, device), grpc.StatusCode.UNAUTHENTICATED)


async def test_only_the_edge_runs_ceremonies(stack: Stack, info: StackInfo) -> None:
    async with channel_as(stack, "identity", "vault") as channel:
        await refused(
            pb_grpc.PasskeysStub(channel).StartAuthentication(
                pb.StartAuthenticationRequest(passwordless=True, source="x")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    async with info.channel("identity") as operator:  # operators list and remove, never sign in
        await refused(
            pb_grpc.PasskeysStub(operator).StartAuthentication(
                pb.StartAuthenticationRequest(passwordless=True, source="x")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )


async def test_a_source_holds_a_bounded_number_of_live_challenges(passkeys: pb_grpc.PasskeysStub, src: str) -> None:
    starts = [
        passkeys.StartAuthentication(pb.StartAuthenticationRequest(passwordless=True, source=src))
        for _ in range(MAX_LIVE_CHALLENGES)
    ]
    await asyncio.gather(*starts)
    await refused(
        passkeys.StartAuthentication(pb.StartAuthenticationRequest(passwordless=True, source=src)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    await passkeys.StartAuthentication(pb.StartAuthenticationRequest(passwordless=True, source=src + "-elsewhere"))
