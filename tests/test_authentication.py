"""Password, then TOTP: tickets, enrollment, ±1 step, single use of a code."""

from __future__ import annotations

import asyncio
import time

import grpc

from identity import totp
from protos.identity.v1 import identity_pb2 as pb
from registry.citizen import Citizen
from tests.identity_calls import activate, enrolled, password_step, refused, stub, totp_step

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


async def test_first_sign_in_enrolls_totp_with_a_qr_code(edge_identity, fresh_citizen: Citizen, source) -> None:
    await activate(edge_identity, fresh_citizen, source)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    assert step.next_step == pb.NEXT_STEP_TOTP_ENROLLMENT
    assert 0 < step.expires_in <= 300
    enrollment = await stub(edge_identity).StartTotpEnrollment(
        pb.StartTotpEnrollmentRequest(ticket=step.ticket, source=source), timeout=10
    )
    assert enrollment.otpauth_uri.startswith("otpauth://totp/")
    assert f"secret={enrollment.secret}" in enrollment.otpauth_uri
    assert fresh_citizen.id_number not in enrollment.otpauth_uri  # the label is masked
    assert enrollment.qr_png.startswith(b"\x89PNG\r\n\x1a\n")
    await refused(
        stub(edge_identity).ConfirmTotpEnrollment(
            pb.ConfirmTotpEnrollmentRequest(ticket=step.ticket, code="000000", source=source), timeout=10
        ),
        UNAUTHENTICATED,
    )
    done = await stub(edge_identity).ConfirmTotpEnrollment(
        pb.ConfirmTotpEnrollmentRequest(ticket=step.ticket, code=totp.code_at(enrollment.secret), source=source),
        timeout=10,
    )
    assert done.id_number == fresh_citizen.id_number
    assert list(done.amr) == ["pwd", "otp"]
    assert abs(done.auth_time - time.time()) < 60
    again = await password_step(edge_identity, fresh_citizen.id_number, source)
    assert again.next_step == pb.NEXT_STEP_TOTP
    await refused(
        stub(edge_identity).StartTotpEnrollment(pb.StartTotpEnrollmentRequest(ticket=again.ticket, source=source)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_password_then_totp_signs_in_and_a_code_works_once(edge_identity, fresh_citizen, source) -> None:
    secret = await enrolled(edge_identity, fresh_citizen, source)
    now = time.time()
    next_code = totp.code_at(secret, now + totp.STEP)  # the enrollment used the current step
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    result = await totp_step(edge_identity, step.ticket, next_code, source)
    assert result.id_number == fresh_citizen.id_number
    assert result.assurance_level == 1
    replay = await password_step(edge_identity, fresh_citizen.id_number, source)
    error = await refused(totp_step(edge_identity, replay.ticket, next_code, source), UNAUTHENTICATED)
    assert "already used" in (error.details() or "")
    older = totp.code_at(secret, now)  # a step before the last accepted one
    await refused(totp_step(edge_identity, replay.ticket, older, source), UNAUTHENTICATED)


async def test_code_from_the_previous_step_is_accepted(edge_identity, fresh_citizen: Citizen, source) -> None:
    await activate(edge_identity, fresh_citizen, source)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    enrollment = await stub(edge_identity).StartTotpEnrollment(
        pb.StartTotpEnrollmentRequest(ticket=step.ticket, source=source), timeout=10
    )
    previous = totp.code_at(enrollment.secret, time.time() - totp.STEP)  # a slow phone clock
    done = await stub(edge_identity).ConfirmTotpEnrollment(
        pb.ConfirmTotpEnrollmentRequest(ticket=step.ticket, code=previous, source=source), timeout=10
    )
    assert done.id_number == fresh_citizen.id_number
    two_back = totp.code_at(enrollment.secret, time.time() - 3 * totp.STEP)
    fresh = await password_step(edge_identity, fresh_citizen.id_number, source)
    await refused(totp_step(edge_identity, fresh.ticket, two_back, source), UNAUTHENTICATED)


def test_the_window_is_one_step_either_side() -> None:
    """RFC 6238 §5.2 with a window of one step: -1, 0 and +1 match (their own step is returned); ±2 do not."""
    secret = totp.new_secret()
    now = 1_000_000 * totp.STEP + totp.STEP / 2
    here = totp.current_step(now)
    found = [totp.matching_step(secret, totp.code_at(secret, now + k * totp.STEP), 0, now) for k in (-2, -1, 0, 1, 2)]
    assert found == [None, here - 1, here, here + 1, None]


async def _clear_of_a_step_edge() -> float:
    """A moment at least 5 s before the next step begins: codes made here for now ± k steps are checked by
    the service in the same step (a boundary crossed in between would shift every offset by one)."""
    left = totp.STEP - time.time() % totp.STEP
    if left < 5:
        await asyncio.sleep(left + 0.1)
    return time.time()


async def test_codes_one_step_either_side_are_accepted_two_steps_are_refused(
    edge_identity, fresh_citizen: Citizen, source
) -> None:
    await activate(edge_identity, fresh_citizen, source)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    enrollment = await stub(edge_identity).StartTotpEnrollment(
        pb.StartTotpEnrollmentRequest(ticket=step.ticket, source=source), timeout=10
    )

    def confirm(code: str) -> grpc.aio.UnaryUnaryCall:
        return stub(edge_identity).ConfirmTotpEnrollment(
            pb.ConfirmTotpEnrollmentRequest(ticket=step.ticket, code=code, source=source), timeout=10
        )

    now = await _clear_of_a_step_edge()

    def at(steps: int) -> str:
        return totp.code_at(enrollment.secret, now + steps * totp.STEP)

    # No step used yet (last step 0): a refusal here is the window's, not the replay rule's.
    await refused(confirm(at(-2)), UNAUTHENTICATED)
    await refused(confirm(at(+2)), UNAUTHENTICATED)
    assert (await confirm(at(-1))).id_number == fresh_citizen.id_number  # last used step: now - 1
    again = await password_step(edge_identity, fresh_citizen.id_number, source)
    await refused(totp_step(edge_identity, again.ticket, at(+2), source), UNAUTHENTICATED)  # after the last step
    assert (await totp_step(edge_identity, again.ticket, at(+1), source)).id_number == fresh_citizen.id_number


async def test_wrong_password_and_unknown_account_look_the_same(edge_identity, fresh_citizen, source) -> None:
    await activate(edge_identity, fresh_citizen, source)
    wrong = await refused(
        password_step(edge_identity, fresh_citizen.id_number, source, "not the password"), UNAUTHENTICATED
    )
    other = "001099" + "123456"
    unknown = await refused(password_step(edge_identity, other, source, "not the password"), UNAUTHENTICATED)
    assert wrong.details() == unknown.details() == "wrong ID number or password"


async def test_ticket_is_bound_to_its_source_and_cannot_be_forged(edge_identity, fresh_citizen, source) -> None:
    secret = await enrolled(edge_identity, fresh_citizen, source)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    code = totp.code_at(secret, time.time() + totp.STEP)
    await refused(totp_step(edge_identity, step.ticket, code, source + "-elsewhere"), UNAUTHENTICATED)
    forged = step.ticket[:-4] + ("AAAA" if not step.ticket.endswith("AAAA") else "BBBB")
    await refused(totp_step(edge_identity, forged, code, source), UNAUTHENTICATED)
    await refused(totp_step(edge_identity, "", code, source), UNAUTHENTICATED)
    await refused(totp_step(edge_identity, "t" * 5000, code, source), UNAUTHENTICATED)


async def test_malformed_codes_are_invalid_arguments(edge_identity, fresh_citizen: Citizen, source) -> None:
    await enrolled(edge_identity, fresh_citizen, source)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    for code in ("", "12345", "1234567", "12a456", "１２３４５６"):
        await refused(totp_step(edge_identity, step.ticket, code, source), grpc.StatusCode.INVALID_ARGUMENT)
