"""Account activation and password + TOTP authentication: the identity use cases, free of transport.

Each use case checks its input, is admitted by the throttle (which charges the attempt as a failure
before any check runs), does the work, settles the charge (kept for a failure, taken back otherwise),
and appends an audit event for success and failure alike. Storage, the registry and hashing come in
through small interfaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from audit.events import AuditEvent, AuditLog, Pseudonymizer
from core import logs
from core.callers import current_caller
from core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthenticated,
)
from core.keys import purposes
from core.keys.provider import KeyProvider
from core.keys.sealing import Sealer
from identity import throttling, totp
from identity.accounts import Account, AccountStore, Attempt, AttemptStore, ThrottleStore
from identity.directory import CitizenDirectory
from identity.passwords import policy
from identity.passwords.hashing import PasswordHashing
from identity.throttling import Factor, Key
from identity.tickets import LIFETIME, Tickets
from identity.verifications import DOCUMENT_TYPES, IN_PERSON_CHECKS, InPerson, VerificationStore
from registry.idnumber import InvalidIdNumber, mask, parse

log = logs.get("identity")

MAX_SOURCE = 200
MAX_PHONE = 20
MAX_NOTE = 500
MAX_CODE = 12
PASSWORD_LOCKED = "password sign-in is locked by the account holder (security page); it must be unlocked first"  # noqa: S105
# The portal a sign-in is for (its client_id, set by the servicer from the request), for the sign-in history
# (issue 13 §5); with the factor and a per-citizen reference of the source, in the sign-in events' detail.
PORTAL: ContextVar[str] = ContextVar("portal", default="")
_CLIENT_ID = re.compile(r"[a-z]{1,16}-[0-9a-f]{16}\Z")
FACTORS = {"identity.password": "pwd", "identity.totp": "otp", "identity.totp.enroll": "otp",
           "identity.authenticate": "pwd+otp", "security.step_up": "otp"}  # fmt: skip


class PasswordLocks(Protocol):
    """The lock of password sign-in the citizen set (``identity.security.PostgresSecurityStore``)."""

    async def locked(self, id_number: str) -> bool: ...


class NextStep(Enum):
    TOTP = "totp"
    TOTP_ENROLLMENT = "totp_enrollment"


@dataclass(frozen=True, slots=True)
class PasswordVerified:
    ticket: str
    next_step: NextStep
    expires_in: int


@dataclass(frozen=True, slots=True)
class Authenticated:
    id_number: str
    assurance_level: int
    amr: tuple[str, ...]
    auth_time: int


@dataclass(frozen=True, slots=True)
class Enrollment:
    secret: str
    otpauth_uri: str
    qr_png: bytes


@dataclass(slots=True)
class Charge:
    """What an admitted attempt was charged to, until it is settled (SP 800-63B-4 §3.2.2)."""

    keys: tuple[Key, ...]
    own: Key  # this source on this account and factor: it holds the lease
    source_wide: Key  # this source on any account: never cleared by one account's success
    settled: bool = False


@dataclass(frozen=True, slots=True)
class AccountView:
    account: Account
    locked: bool
    in_person: InPerson | None = None  # level 2: the newest in-person verification on record (migration 0023)


def valid_id(raw: str) -> str:
    try:
        return parse(raw).value
    except InvalidIdNumber as error:
        raise InvalidArgument(str(error)) from None


def valid_source(source: str) -> str:
    source = source.strip()
    if not source:
        raise InvalidArgument("source is required (the device id or address the request comes from)")
    if len(source) > MAX_SOURCE:
        raise InvalidArgument(f"source longer than {MAX_SOURCE} characters")
    if source.startswith("*"):  # the names of the aggregate counters (throttling.ALL, UNFAMILIAR, ANY_ACCOUNT)
        raise InvalidArgument("a source may not begin with '*'")
    return source


def valid_code(code: str) -> str:
    code = code.strip()
    if len(code) > MAX_CODE or not code.isascii() or not code.isdigit() or len(code) != totp.DIGITS:
        raise InvalidArgument(f"the code has {totp.DIGITS} digits")
    return code


class IdentityService:
    def __init__(
        self,
        accounts: AccountStore,
        attempts: AttemptStore,
        throttle: ThrottleStore,
        directory: CitizenDirectory,
        hashing: PasswordHashing,
        audit: AuditLog,
        keys: KeyProvider,
        verifications: VerificationStore | None = None,
        locks: PasswordLocks | None = None,
    ) -> None:
        """``verifications``: where in-person verifications are recorded (none: level 2 is set with its note only)."""
        self._verifications = verifications
        self._locks = locks  # the citizen's lock of password sign-in (identity.security); none: never locked
        self._accounts = accounts
        self._attempts = attempts
        self._throttle = throttle
        self._directory = directory
        self._hashing = hashing
        self._audit = audit
        self._tickets = Tickets(keys.key(purposes.LOGIN_TICKET))
        self._totp_box = Sealer(keys.key(purposes.TOTP_SECRET))
        self._refs = Pseudonymizer(keys.key(purposes.AUDIT_PSEUDONYM))

    # -- activation -------------------------------------------------------------------------

    async def activate(self, id_number: str, phone: str, password: str, source: str) -> Account:
        """Activate the account of a citizen on record, proving possession of the phone on record."""
        id_number, source = valid_id(id_number), valid_source(source)
        if len(phone) > MAX_PHONE:
            raise InvalidArgument(f"phone longer than {MAX_PHONE} characters")
        if len(password) > policy.MAX_LENGTH:
            raise InvalidArgument(f"password longer than {policy.MAX_LENGTH} characters")
        attempt, charge = await self._admit(id_number, source, Factor.ACTIVATION, "identity.activate")
        async with self._settling(charge):
            facts = await self._directory.lookup(id_number)
            if facts is None:
                await self._record("identity.activate", "refused", id_number, source, reason="unknown_id")
                raise NotFound("no citizen with this ID number in the population registry")
            if _digits(phone) != _digits(facts.phone):
                await self._fail(charge, "identity.activate", id_number, source, "wrong_phone")
                raise PermissionDenied("the phone number does not match the one on record")
            if attempt.account is not None:
                await self._record("identity.activate", "refused", id_number, source, reason="already_active")
                raise AlreadyExists("this account is already activated; sign in instead")
            normal = policy.check(password, context=(id_number, facts.phone, *facts.full_name.split()))
            account = await self._accounts.create(id_number, await self._hashing.hash(normal))
            if account is None:
                raise AlreadyExists("this account is already activated; sign in instead")
            await self._succeeded(charge, id_number, source)
        await self._record("identity.activate", "success", id_number, source)
        return account

    # -- authentication ---------------------------------------------------------------------

    async def verify_password(self, id_number: str, password: str, source: str) -> PasswordVerified:
        """First factor (SP 800-63B-4 §3.1.1): the password, throttled, checked in the hash pool."""
        id_number, source = valid_id(id_number), valid_source(source)
        if len(password) > policy.MAX_LENGTH:
            raise InvalidArgument(f"password longer than {policy.MAX_LENGTH} characters")
        attempt, charge = await self._admit(id_number, source, Factor.PASSWORD, "identity.password")
        account = attempt.account
        normal = policy.normalize(password)
        async with self._settling(charge):
            if account is None:
                await self._hashing.verify_nothing(normal)
                matches, rehash = False, False
            else:
                matches, rehash = await self._hashing.verify(account.password_hash, normal)
            if not matches or account is None:
                await self._fail(charge, "identity.password", id_number, source, "wrong_password")
                raise Unauthenticated("wrong ID number or password")
            if self._locks is not None and await self._locks.locked(id_number):  # told only to the password's holder
                await self._fail(charge, "identity.password", id_number, source, "password_locked")
                raise FailedPrecondition(PASSWORD_LOCKED)
            # Right password: this source's password counter starts over; the account's counters wait for
            # the second factor, less this attempt's charge.
            await self._throttle.release([k for k in charge.keys if k != charge.own], clear=[charge.own])
            charge.settled = True
        if rehash:
            with contextlib.suppress(Throttled):  # busy: rehash at a later sign-in
                await self._accounts.set_password_hash(id_number, await self._hashing.hash(normal))
        ticket, _ = self._tickets.issue(id_number, source)
        await self._record("identity.password", "success", id_number, source)
        step = NextStep.TOTP if account.totp_enrolled else NextStep.TOTP_ENROLLMENT
        return PasswordVerified(ticket, step, LIFETIME)

    async def verify_totp(self, ticket: str, code: str, source: str) -> Authenticated:
        """Second factor (SP 800-63B-4 §3.1.4): a TOTP code, once only, within ±1 step."""
        id_number, source, code = self._ticket(ticket, source), valid_source(source), valid_code(code)
        attempt, charge = await self._admit(id_number, source, Factor.TOTP, "identity.totp")
        async with self._settling(charge):
            account = self._must_exist(attempt)
            if account.totp_secret is None:
                raise FailedPrecondition("no TOTP enrolled for this account; enroll first")
            secret = self._open_totp(account.totp_secret, id_number)
            step = totp.matching_step(secret, code, account.totp_last_step)
            remember = throttling.familiar_eligible(source)
            if step is None or not await self._attempts.totp_accepted(id_number, source, step, remember):
                await self._fail(charge, "identity.totp", id_number, source, "wrong_or_used_code")
                raise Unauthenticated("wrong or already used code")
            # accepted: the account's counters and this source's are gone; the source-wide charge goes back
            await self._throttle.release([charge.source_wide])
            charge.settled = True
        return await self._signed_in(account, source)

    async def start_enrollment(self, ticket: str, source: str) -> Enrollment:
        """A TOTP secret for an account that has none, after the password step.

        The pending secret, when there is one, is shown again (a reload or a mistyped first code must not
        invalidate the QR code the citizen has already scanned); otherwise a new one is made.
        """
        id_number, source = self._ticket(ticket, source), valid_source(source)
        account = await self._existing(id_number)
        if account.totp_enrolled:
            raise FailedPrecondition("TOTP is already enrolled for this account")
        pending = self._totp_box.open(account.totp_pending, id_number.encode()) if account.totp_pending else None
        if pending is not None:
            secret = pending.decode()
        else:
            secret = totp.new_secret()
            await self._accounts.set_pending_totp(id_number, self._totp_box.seal(secret.encode(), id_number.encode()))
        uri = totp.provisioning_uri(secret, mask(id_number))
        await self._record("identity.totp.enroll.start", "success", id_number, source)
        return Enrollment(secret, uri, totp.qr_png(uri))

    async def confirm_enrollment(self, ticket: str, code: str, source: str) -> Authenticated:
        """The first code from the new secret proves the phone has it; the sign-in completes."""
        id_number, source, code = self._ticket(ticket, source), valid_source(source), valid_code(code)
        attempt, charge = await self._admit(id_number, source, Factor.TOTP, "identity.totp.enroll")
        async with self._settling(charge):
            account = self._must_exist(attempt)
            if account.totp_enrolled or account.totp_pending is None:
                raise FailedPrecondition("no TOTP enrollment in progress for this account")
            secret = self._open_totp(account.totp_pending, id_number)
            step = totp.matching_step(secret, code, 0)
            if step is None or not await self._accounts.confirm_totp(id_number, account.totp_pending, step):
                await self._fail(charge, "identity.totp.enroll", id_number, source, "wrong_code")
                raise Unauthenticated("wrong code; check the time on your phone and try again")
            await self._succeeded(charge, id_number, source)
        return await self._signed_in(account, source)

    async def step_up(self, id_number: str, code: str, source: str, action: str, **detail: object) -> Account:
        """Re-prove the current TOTP now (issue 13 §5, SP 800-63B-4 §2.2.3): a fresh code, once only, throttled as
        the sign-in's second factor (a step-up is no side door for guessing codes)."""
        id_number, source, code = valid_id(id_number), valid_source(source), valid_code(code)
        attempt, charge = await self._admit(id_number, source, Factor.TOTP, action)
        async with self._settling(charge):
            account = self._must_exist(attempt)
            if account.totp_secret is None:
                raise FailedPrecondition("no TOTP enrolled for this account")
            step = totp.matching_step(self._open_totp(account.totp_secret, id_number), code, account.totp_last_step)
            if step is None or not await self._attempts.totp_accepted(id_number, source, step):
                await self._fail(charge, action, id_number, source, "wrong_or_used_code")
                raise Unauthenticated("wrong or already used code")
            await self._throttle.release([charge.source_wide])
            charge.settled = True
        await self._record(action, "success", id_number, source, **detail)
        return account

    def seal_totp(self, secret: str, id_number: str) -> bytes:
        return self._totp_box.seal(secret.encode(), id_number.encode())

    def open_totp(self, sealed: bytes, id_number: str) -> str:
        return self._open_totp(sealed, id_number)

    async def record(self, action: str, outcome: str, id_number: str, source: str | None, **detail: object) -> None:
        """An audit event of another identity use case (identity.security)."""
        await self._record(action, outcome, id_number, source, **detail)

    # -- operators --------------------------------------------------------------------------

    async def get_account(self, id_number: str) -> AccountView:
        id_number = valid_id(id_number)
        key = Key(id_number, throttling.ALL, throttling.ANY_FACTOR)
        attempt = await self._attempts.attempt(id_number, "", [key])
        limit = throttling.ACCOUNT.hard_limit or 0
        failures = attempt.counters.get(key, throttling.Counter()).failures
        account = self._must_exist(attempt)
        in_person = None
        if account.assurance_level == 2 and self._verifications is not None:
            in_person = await self._verifications.latest(id_number)
        return AccountView(account, failures >= limit, in_person)

    async def set_assurance_level(self, id_number: str, level: int, note: str, document_type: str = "") -> AccountView:
        """Level 2 records that an operator verified the citizen in person: with a verification store, the
        evidence (OpenID Identity Assurance Schema Definition 1.0 §5.1.1): the operator who called, the place
        (``note``), the checks, the document (``document_type``, the chip CCCD by default; its number, issuer and
        date of issue from the population registry) and the time, in one transaction with the level."""
        id_number = valid_id(id_number)
        if level not in (1, 2):
            raise InvalidArgument("assurance level is 1 or 2")
        if len(note) > MAX_NOTE:
            raise InvalidArgument(f"note longer than {MAX_NOTE} characters")
        document_type = document_type.strip() or DOCUMENT_TYPES[0]
        if document_type not in DOCUMENT_TYPES:
            raise InvalidArgument("document_type is " + " or ".join(DOCUMENT_TYPES))
        if level == 2 and self._verifications is not None:
            if not note.strip():
                raise InvalidArgument("note is required: where the citizen was verified in person")
            record = await self._in_person(id_number, note.strip(), document_type)
            if await self._verifications.verify_in_person(record) is None:
                raise NotFound("no activated account with this ID number")
        elif await self._accounts.set_assurance_level(id_number, level, note.strip()) is None:
            raise NotFound("no activated account with this ID number")
        await self._record("identity.assurance", "success", id_number, None, level=level)
        return await self.get_account(id_number)

    async def unlock(self, id_number: str) -> AccountView:
        id_number = valid_id(id_number)
        await self._existing(id_number)
        await self._throttle.unlock(id_number)
        await self._record("identity.unlock", "success", id_number, None)
        return await self.get_account(id_number)

    async def _in_person(self, id_number: str, place: str, document_type: str) -> InPerson:
        """The evidence of an in-person verification: the document's particulars are the registry's."""
        facts = await self._directory.lookup(id_number)
        if facts is None:
            raise NotFound("no citizen on record with this ID number")
        issued = None
        with contextlib.suppress(ValueError):
            issued = dt.date.fromisoformat(facts.id_card_issue_date) if facts.id_card_issue_date else None
        caller = current_caller()
        return InPerson(
            txn=uuid.uuid4(), id_number=id_number, verifier=caller.name if caller.kind == "operator" else caller.label,
            place=place, check_methods=IN_PERSON_CHECKS, document_type=document_type, document_number=id_number,
            document_issuer=facts.id_card_issue_place, document_issued=issued, verified_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip

    # -- helpers ----------------------------------------------------------------------------

    async def _admit(self, id_number: str, source: str, factor: Factor, action: str) -> tuple[Attempt, Charge]:
        """Charge the attempt to its counters before any check runs, or refuse it now if a counter says
        wait (one transaction under the counters' locks: concurrent attempts cannot share a count)."""
        now = time.time()
        candidates = list(throttling.keys(id_number, source, factor, familiar=False))

        def admit(familiar: bool, counters: dict[Key, throttling.Counter]) -> throttling.Admission:
            return throttling.admit(id_number, source, factor, familiar, counters, now)

        attempt, admission = await self._attempts.reserve(id_number, source, candidates, admit)
        verdict = admission.verdict
        if not verdict.allowed:
            await self._record(action, "throttled", id_number, source, retry_after=verdict.retry_after)
            when = f"; retry in {verdict.retry_after} s" if verdict.retry_after else ""
            raise Throttled(verdict.reason + when, verdict.retry_after)
        own = throttling.own(id_number, source, factor)
        wide = Key(throttling.ANY_ACCOUNT, source, factor)
        return attempt, Charge(tuple(admission.charged), own, wide)

    @contextlib.asynccontextmanager
    async def _settling(self, charge: Charge) -> AsyncIterator[None]:
        """Whatever ends the attempt without settling it takes the charge back (it ran no check: a busy hash
        queue, an unknown citizen, no enrollment …), except a cancellation, which keeps it: the check may
        have run, and a caller who hangs up must not get free guesses."""
        try:
            yield
        except asyncio.CancelledError:
            if not charge.settled:
                await asyncio.shield(self._throttle.settle(charge.own))
            raise
        except BaseException:
            if not charge.settled:
                await self._throttle.release(list(charge.keys))
            raise
        if not charge.settled:
            await self._throttle.release(list(charge.keys))

    async def _fail(self, charge: Charge, action: str, id_number: str, source: str, reason: str) -> None:
        """A failed check: the charge stands, the lease ends."""
        charge.settled = True
        await self._throttle.settle(charge.own)
        await self._record(action, "failure", id_number, source, reason=reason)

    async def _succeeded(self, charge: Charge, id_number: str, source: str) -> None:
        """A completed activation or sign-in: the account's counters start over; an address is not remembered."""
        await self._throttle.succeeded(id_number, source, throttling.familiar_eligible(source), [charge.source_wide])
        charge.settled = True

    async def _signed_in(self, account: Account, source: str) -> Authenticated:
        await self._record("identity.authenticate", "success", account.id_number, source)
        return Authenticated(account.id_number, account.assurance_level, ("pwd", "otp"), int(time.time()))

    def _ticket(self, token: str, source: str) -> str:
        ticket = self._tickets.read(token, valid_source(source))
        if ticket is None:
            raise Unauthenticated("sign-in step expired or invalid; start again with your password")
        return ticket.id_number

    def _open_totp(self, sealed: bytes, id_number: str) -> str:
        secret = self._totp_box.open(sealed, id_number.encode())
        if secret is None:
            raise FailedPrecondition("the TOTP secret cannot be read; enroll again")
        return secret.decode()

    @staticmethod
    def _must_exist(attempt: Attempt) -> Account:
        if attempt.account is None:
            raise NotFound("no activated account with this ID number")
        return attempt.account

    async def _existing(self, id_number: str) -> Account:
        account = await self._accounts.get(id_number)
        if account is None:
            raise NotFound("no activated account with this ID number")
        return account

    async def _record(self, action: str, outcome: str, id_number: str, source: str | None, **detail: object) -> None:
        actor = current_caller().label
        if action in FACTORS:  # the sign-in history's columns (leaves keep client_id, factor, source: audit/leaves.py)
            detail.setdefault("factor", FACTORS[action])
            if source:  # "device-…"/"address-…": keyed per citizen, so one device links no two citizens' leaves
                kind = "device" if source.startswith("device:") else "address"
                detail["source"] = f"{kind}-{self._refs.ref(f'{id_number}|{source}')[:16]}"
            if _CLIENT_ID.match(PORTAL.get()):
                detail["client_id"] = PORTAL.get()
        log.info(action, outcome=outcome, account=mask(id_number), actor=actor, **detail)
        await self._audit.append(
            AuditEvent(
                actor=actor,
                action=action,
                outcome=outcome,
                subject=self._refs.ref(id_number),
                source=self._refs.ref(source) if source else None,
                detail=dict(detail),
            )
        )


def _digits(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "0" + digits[2:] if digits.startswith("84") and len(digits) == 11 else digits
