"""Account activation against the population registry (identity.ActivateAccount)."""

from __future__ import annotations

import asyncio

import grpc

from protos.identity.v1 import identity_pb2 as pb
from registry.citizen import Citizen
from tests.identity_calls import PASSWORD, activate, refused, stub

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def request(citizen: Citizen, source: str, **changes: str) -> pb.ActivateAccountRequest:
    fields = {"id_number": citizen.id_number, "phone": citizen.phone, "password": PASSWORD, "source": source}
    return pb.ActivateAccountRequest(**{**fields, **changes})


async def test_citizen_on_record_activates_at_level_1(edge_identity, fresh_citizen: Citizen, source: str) -> None:
    account = await activate(edge_identity, fresh_citizen, source)
    assert account.id_number == fresh_citizen.id_number
    assert account.assurance_level == 1
    assert not account.totp_enrolled
    assert not account.locked


async def test_phone_in_international_form_is_the_same_phone(edge_identity, fresh_citizen: Citizen, source) -> None:
    international = "+84 " + fresh_citizen.phone[1:]
    account = await stub(edge_identity).ActivateAccount(request(fresh_citizen, source, phone=international), timeout=10)
    assert account.id_number == fresh_citizen.id_number


async def test_second_activation_is_refused(edge_identity, fresh_citizen: Citizen, source: str) -> None:
    await activate(edge_identity, fresh_citizen, source)
    error = await refused(activate(edge_identity, fresh_citizen, source), grpc.StatusCode.ALREADY_EXISTS)
    assert "already activated" in (error.details() or "")


async def test_wrong_phone_is_refused(edge_identity, fresh_citizen: Citizen, source: str) -> None:
    wrong = "0" + ("9" if fresh_citizen.phone[1] != "9" else "8") + fresh_citizen.phone[2:]
    call = stub(edge_identity).ActivateAccount(request(fresh_citizen, source, phone=wrong), timeout=10)
    error = await refused(call, grpc.StatusCode.PERMISSION_DENIED)
    assert "phone" in (error.details() or "")


async def test_unknown_id_number_is_not_found(edge_identity, fresh_citizen: Citizen, source: str) -> None:
    unknown = fresh_citizen.id_number[:6] + ("000000" if fresh_citizen.id_number[6:] != "000000" else "000001")
    call = stub(edge_identity).ActivateAccount(request(fresh_citizen, source, id_number=unknown), timeout=10)
    await refused(call, grpc.StatusCode.NOT_FOUND)


async def test_malformed_id_numbers_are_invalid(edge_identity, fresh_citizen: Citizen, source: str) -> None:
    for bad in ("", "12345", "0010990000011", "00109900000a", "999099000001", "001599000001"):
        call = stub(edge_identity).ActivateAccount(request(fresh_citizen, source, id_number=bad), timeout=10)
        error = await refused(call, INVALID)
        assert bad == "" or bad not in (error.details() or ""), "the error must not echo the number"


async def test_weak_passwords_are_refused_with_the_rule(edge_identity, fresh_citizen: Citizen, source) -> None:
    cases = {
        "short1!": "shorter than 8",
        "password123": "commonly used",
        "iloveyou": "commonly used",
        "aaaaaaaaaaaa": "repetitive",
        "12345678901": "sequential",
        fresh_citizen.id_number + "!": "too close",
        "x" * 257: "longer than 256",
    }
    for password, reason in cases.items():
        call = stub(edge_identity).ActivateAccount(request(fresh_citizen, source, password=password), timeout=10)
        error = await refused(call, INVALID)
        assert reason in (error.details() or ""), (password, error.details())
    account = await activate(edge_identity, fresh_citizen, source, password="x" * 64 + " long passphrases are welcome")
    assert account.id_number == fresh_citizen.id_number


async def test_missing_source_and_oversized_fields(edge_identity, fresh_citizen: Citizen) -> None:
    await refused(stub(edge_identity).ActivateAccount(request(fresh_citizen, ""), timeout=10), INVALID)
    await refused(stub(edge_identity).ActivateAccount(request(fresh_citizen, "s" * 201), timeout=10), INVALID)
    call = stub(edge_identity).ActivateAccount(request(fresh_citizen, "src", phone="0" * 21), timeout=10)
    await refused(call, INVALID)


async def test_parallel_activations_from_one_source_all_go_through(edge_identity, fresh_citizens, source) -> None:
    """An operator (or a shared office address) activating several citizens at once is not throttled: none of
    the parallel attempts failed, so none may be told to wait (bench/accounts.py activates 8 at a time)."""
    citizens = [next(fresh_citizens) for _ in range(8)]
    accounts = await asyncio.gather(*(activate(edge_identity, c, source) for c in citizens))
    assert sorted(a.id_number for a in accounts) == sorted(c.id_number for c in citizens)
