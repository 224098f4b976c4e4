"""Passkeys: WebAuthn Level 3 credentials of citizens, verified with the ``webauthn`` library (issue 13 §4).

NIST SP 800-63B-4 §3.2.5: an AAL2 verifier SHALL offer a phishing-resistant authentication option; a WebAuthn
credential is one, its signature covering the origin (§5.8.1 ``CollectedClientData.origin``) and the RP ID hash
(§6.1 ``rpIdHash``). This module is the Relying Party's side:

- registration (§7.1) for a signed-in citizen: a discoverable credential (``residentKey: required``, so it also
  serves passwordless sign-in), user verification preferred, no attestation (§5.4.7 ``none``: the platform
  does not restrict authenticator models); its id, public key, signature counter, transports, backup
  eligibility/state (§6.1 flags BE/BS) and whether the user was verified are stored;
- authentication (§7.2) either as the second factor after the password (VerifyPassword's ticket names the
  account; the assertion must be by one of its credentials) or passwordless: a discoverable credential found
  by its id, the user handle checked (§7.2 step 6), user verification required, and only for accounts at
  assurance level 2 (a level-1 account was activated online with an SMS-grade proof only; its passkey is a
  second factor, never the whole sign-in).

Challenges (§13.4.3) are random 32 bytes, stored with their purpose, source and account, valid
``CHALLENGE_TTL`` seconds and taken once (the store deletes what it returns, so two responses to one challenge
cannot both be verified). The signature counter (§6.1.1) must grow when either value is non-zero: a response
whose counter is not above the stored one is refused as a possible clone, checked again in the update itself so
that two concurrent sign-ins cannot both move it. The BE flag never changes for a credential (§6.1.3); BS is
recorded as last seen.

The resulting ``amr`` (RFC 8176 §2): ``hwk`` for a credential that is not backup eligible (a device-bound key),
``swk`` for a synced passkey (BE set: the private key leaves the device), plus ``user`` when the authenticator
verified the user, plus ``pwd`` when it followed the password. ``acr`` stays the account's identity assurance
level ("1"/"2", identity/oidc/assurance.py): the factor is what ``amr`` says.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

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
from core.keys.sealing import b64, unb64
from identity import throttling
from identity.service import Authenticated, valid_id, valid_source
from identity.tickets import Tickets
from registry.idnumber import mask

log = logs.get("identity")

CHALLENGE_TTL = 300  # seconds: the ceremony's timeout hint is 120 s; a page may sit a while before the click
CEREMONY_TIMEOUT_MS = 120_000
MAX_PASSKEYS = 10
MAX_LIVE_CHALLENGES = 20  # per source: the challenges table cannot be flooded from one device or address
MAX_CREDENTIAL_JSON = 16 * 1024
MAX_NAME = 64
RP_NAME = "Định danh điện tử"
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
PASSWORDLESS_LEVEL = 2
SIGN_IN_ACTIONS = ("identity.passkey.authenticate", "identity.authenticate")
_CLIENT_ID = re.compile(r"[a-z]{1,16}-[0-9a-f]{16}\Z")  # a registered client id (identity/service.py's)

REGISTER = "register"
SECOND_FACTOR = "second_factor"
PASSWORDLESS = "passwordless"


@dataclass(frozen=True, slots=True)
class Passkey:
    credential_id: bytes
    id_number: str
    user_handle: bytes
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    backup_eligible: bool
    backup_state: bool
    user_verified: bool
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    purpose: str
    challenge: bytes
    id_number: str | None
    user_handle: bytes | None
    source: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Ceremony:
    handle: str
    options_json: str
    expires_in: int


class PasskeyStore(Protocol):
    """What the passkey use cases need from storage (identity/passkey_store.py: PostgreSQL)."""

    async def assurance_level(self, id_number: str) -> int | None:
        """The activated account's level, None when there is no account."""

    async def passkeys(self, id_number: str) -> list[Passkey]: ...
    async def passkey(self, credential_id: bytes) -> Passkey | None: ...
    async def add(self, passkey: Passkey) -> bool:
        """False when the credential id is registered already (to anyone)."""

    async def used(self, credential_id: bytes, sign_count: int, backup_state: bool) -> bool:
        """Record a verified assertion: the new counter (only if it grows, or both are 0), BS, the time.
        False when the stored counter is not below ``sign_count`` any more (a concurrent or cloned use)."""

    async def remove(self, id_number: str, credential_id: bytes) -> bool: ...
    async def put_challenge(self, challenge: Challenge, limit: int) -> bool:
        """Store a new challenge (and drop expired ones); False when its source holds ``limit`` live ones."""

    async def take_challenge(self, handle: str, purpose: str, source: str) -> Challenge | None:
        """Delete and return the unexpired challenge ``handle`` of ``purpose`` from ``source``; None otherwise
        (also when another call took it first)."""


class Successes(Protocol):
    """The throttle's success hook (identity.accounts.ThrottleStore.succeeded): a complete sign-in clears the
    account's failure counters for this source, as a TOTP sign-in does."""

    async def succeeded(self, account: str, source: str, remember: bool, released: list[Any]) -> None: ...


def relying_party(issuer: str) -> tuple[str, str]:
    """The RP ID and origin of the OP at ``issuer`` (WebAuthn §5.1.3: the RP ID is the origin's effective
    domain, or a registrable suffix of it; an IP address is not a valid RP ID)."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"the issuer URL {issuer!r} has no host for a WebAuthn RP ID")
    host = parts.hostname
    if host.replace(".", "").isdigit() or ":" in host:
        raise ValueError(f"an IP address ({host}) cannot be a WebAuthn RP ID: name the edge by a domain")
    return host, f"{parts.scheme}://{parts.netloc}"


def amr_of(passkey: Passkey, user_verified: bool, after_password: bool) -> tuple[str, ...]:
    """RFC 8176 §2 method references of a passkey sign-in (see the module docstring)."""
    methods = ["pwd"] if after_password else []
    methods.append("swk" if passkey.backup_eligible else "hwk")
    if user_verified:
        methods.append("user")
    return tuple(methods)


def factor_of(amr: tuple[str, ...]) -> str:
    """The sign-in history's factor column: the methods but ``user`` ("pwd+hwk", "swk")."""
    return "+".join(m for m in amr if m != "user")


def _portal(client_id: str) -> dict[str, str]:
    return {"client_id": client_id} if _CLIENT_ID.match(client_id) else {}


def credential_id_of(text: str) -> bytes:
    raw = unb64(text) if text and len(text) <= 1400 else None
    if not raw:
        raise InvalidArgument("credential_id is a base64url credential id")
    return raw


class PasskeyService:
    def __init__(
        self,
        store: PasskeyStore,
        tickets: Tickets,
        audit: AuditLog,
        refs: Pseudonymizer,
        issuer: str,
        successes: Successes | None = None,
    ) -> None:
        self._store = store
        self._tickets = tickets
        self._audit = audit
        self._refs = refs
        self._successes = successes
        self._rp: tuple[str, str] | None = None
        self._rp_problem = ""
        try:
            self._rp = relying_party(issuer)
        except ValueError as error:
            self._rp_problem = str(error)

    @property
    def rp(self) -> tuple[str, str]:
        if self._rp is None:
            raise FailedPrecondition(f"passkeys are not available here: {self._rp_problem or 'no issuer URL'}")
        return self._rp

    # -- registration (WebAuthn §7.1) ------------------------------------------------------------------------

    async def start_registration(self, id_number: str, source: str) -> Ceremony:
        id_number, source = valid_id(id_number), valid_source(source)
        rp_id, _ = self.rp
        if await self._store.assurance_level(id_number) is None:
            raise NotFound("no activated account with this ID number")
        existing = await self._store.passkeys(id_number)
        if len(existing) >= MAX_PASSKEYS:
            raise FailedPrecondition(f"at most {MAX_PASSKEYS} passkeys per account; remove one first")
        user_handle = existing[0].user_handle if existing else secrets.token_bytes(32)
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=rp_id,
            rp_name=RP_NAME,
            user_name=mask(id_number),  # shown by the authenticator's account chooser: never the whole number
            user_id=user_handle,
            user_display_name=mask(id_number),
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(p) for p in existing],
            supported_pub_key_algs=ALGORITHMS,
        )
        handle = await self._new_challenge(REGISTER, challenge, source, id_number, user_handle)
        await self._record("identity.passkey.register.start", "success", id_number, source)
        return Ceremony(handle, options_to_json(options), CHALLENGE_TTL)

    async def finish_registration(
        self, id_number: str, handle: str, credential_json: str, name: str, source: str
    ) -> Passkey:
        id_number, source = valid_id(id_number), valid_source(source)
        rp_id, origin = self.rp
        name = " ".join(name.split())[:MAX_NAME] or "Passkey"
        credential = _parsed(credential_json, parse_registration_credential_json)
        challenge = await self._store.take_challenge(_handle(handle), REGISTER, source)
        if challenge is None or challenge.id_number != id_number or challenge.user_handle is None:
            await self._record("identity.passkey.register", "failure", id_number, source, reason="challenge")
            raise Unauthenticated("the passkey registration expired or was already used; start again")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge.challenge,
                expected_rp_id=rp_id,
                expected_origin=origin,
                require_user_presence=True,
                supported_pub_key_algs=ALGORITHMS,
            )
        except WebAuthnException as error:
            await self._record("identity.passkey.register", "failure", id_number, source, reason="invalid_response")
            raise Unauthenticated(f"the passkey response does not verify: {error}") from None
        transports = tuple(sorted({t.value for t in credential.response.transports or []}))
        now = dt.datetime.now(dt.UTC)
        passkey = Passkey(
            credential_id=verified.credential_id,
            id_number=id_number,
            user_handle=challenge.user_handle,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=transports,
            aaguid=verified.aaguid,
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backup_state=verified.credential_backed_up,
            user_verified=verified.user_verified,
            name=name,
            created_at=now,
            last_used_at=None,
        )
        if not await self._store.add(passkey):
            await self._record("identity.passkey.register", "refused", id_number, source, reason="known_credential")
            raise AlreadyExists("this passkey is registered already")
        await self._record("identity.passkey.register", "success", id_number, source,
                           backup_eligible=passkey.backup_eligible, user_verified=passkey.user_verified)  # fmt: skip
        return passkey

    # -- authentication (WebAuthn §7.2) ------------------------------------------------------------------------

    async def start_authentication(self, ticket: str, passwordless: bool, source: str) -> Ceremony:
        source = valid_source(source)
        rp_id, _ = self.rp
        challenge = secrets.token_bytes(32)
        if passwordless:
            if ticket:
                raise InvalidArgument("a passwordless sign-in has no password ticket")
            options = generate_authentication_options(
                rp_id=rp_id, challenge=challenge, timeout=CEREMONY_TIMEOUT_MS, allow_credentials=[],
                user_verification=UserVerificationRequirement.REQUIRED,
            )  # fmt: skip
            handle = await self._new_challenge(PASSWORDLESS, challenge, source, None, None)
        else:
            id_number = self._ticket(ticket, source)
            passkeys = await self._store.passkeys(id_number)
            if not passkeys:
                raise FailedPrecondition("no passkey registered for this account")
            options = generate_authentication_options(
                rp_id=rp_id, challenge=challenge, timeout=CEREMONY_TIMEOUT_MS,
                allow_credentials=[_descriptor(p) for p in passkeys],
                user_verification=UserVerificationRequirement.PREFERRED,
            )  # fmt: skip
            handle = await self._new_challenge(SECOND_FACTOR, challenge, source, id_number, None)
        return Ceremony(handle, options_to_json(options), CHALLENGE_TTL)

    async def finish_authentication(
        self, handle: str, credential_json: str, source: str, ticket: str, client_id: str = ""
    ) -> Authenticated:
        """§7.2. ``client_id``: the portal the sign-in is for, written into the sign-in events (the history)."""
        source = valid_source(source)
        rp_id, origin = self.rp
        after_password = bool(ticket)
        expected = self._ticket(ticket, source) if after_password else None
        credential = _parsed(credential_json, parse_authentication_credential_json)
        purpose = SECOND_FACTOR if after_password else PASSWORDLESS
        challenge = await self._store.take_challenge(_handle(handle), purpose, source)
        action = "identity.passkey.authenticate"
        if challenge is None or challenge.id_number != expected:
            await self._record(action, "failure", expected, source, reason="challenge")
            raise Unauthenticated("the passkey sign-in expired or was already used; start again")
        passkey = await self._store.passkey(credential.raw_id)
        if passkey is None or (expected is not None and passkey.id_number != expected):
            await self._record(action, "failure", expected, source, reason="unknown_credential")
            raise Unauthenticated("this passkey is not registered for this account")
        id_number = passkey.id_number
        level = await self._store.assurance_level(id_number)
        if level is None:
            raise NotFound("no activated account with this ID number")
        if not after_password:
            user_handle = credential.response.user_handle
            if user_handle is not None and user_handle != passkey.user_handle:  # §7.2 step 6
                await self._record(action, "failure", id_number, source, reason="user_handle")
                raise Unauthenticated("the passkey's user handle does not match its registration")
            if level < PASSWORDLESS_LEVEL:
                await self._record(action, "refused", id_number, source, reason="passwordless_level_1")
                raise PermissionDenied(
                    "passwordless sign-in is for accounts verified in person (level 2); sign in with your password"
                    " and use the passkey as the second factor"
                )
        flags = _flags(credential)
        counted = flags is not None and (flags.sign_count > 0 or passkey.sign_count > 0)
        if counted and flags.sign_count <= passkey.sign_count:  # §6.1.1: a possibly cloned authenticator
            await self._record(action, "refused", id_number, source, reason="sign_count_regressed",
                               stored=passkey.sign_count, received=flags.sign_count)  # fmt: skip
            raise Unauthenticated("the passkey's signature counter went backwards: it may have been cloned")
        if flags is not None and flags.flags.be != passkey.backup_eligible:  # §6.1.3: BE never changes
            await self._record(action, "refused", id_number, source, reason="backup_eligibility_changed")
            raise Unauthenticated("the passkey's backup eligibility changed since its registration")
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge.challenge,
                expected_rp_id=rp_id,
                expected_origin=origin,
                credential_public_key=passkey.public_key,
                credential_current_sign_count=passkey.sign_count,
                require_user_verification=not after_password,
            )
        except WebAuthnException as error:
            await self._record(action, "failure", id_number, source, reason="invalid_response")
            raise Unauthenticated(f"the passkey response does not verify: {error}") from None
        if not await self._store.used(passkey.credential_id, verified.new_sign_count, verified.credential_backed_up):
            await self._record(action, "refused", id_number, source, reason="sign_count_regressed")
            raise Unauthenticated("the passkey's signature counter went backwards: it may have been cloned")
        amr = amr_of(passkey, verified.user_verified, after_password)
        if self._successes is not None:
            await self._successes.succeeded(id_number, source, throttling.familiar_eligible(source), [])
        signed_in = {"amr": list(amr), "factor": factor_of(amr), **_portal(client_id)}
        await self._record(action, "success", id_number, source, backup_state=verified.credential_backed_up,
                           **signed_in)  # fmt: skip
        await self._record("identity.authenticate", "success", id_number, source, **signed_in)
        return Authenticated(id_number, level, amr, int(time.time()))

    # -- the citizen's security page -------------------------------------------------------------------------

    async def list_passkeys(self, id_number: str) -> list[Passkey]:
        return await self._store.passkeys(valid_id(id_number))

    async def remove_passkey(self, id_number: str, credential_id: str) -> None:
        id_number, raw = valid_id(id_number), credential_id_of(credential_id)
        if not await self._store.remove(id_number, raw):
            raise NotFound("no such passkey for this account")
        await self._record("identity.passkey.remove", "success", id_number, None)

    # -- helpers ---------------------------------------------------------------------------------------------

    async def _new_challenge(
        self, purpose: str, challenge: bytes, source: str, id_number: str | None, user_handle: bytes | None
    ) -> str:
        handle = str(uuid.uuid4())
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=CHALLENGE_TTL)
        if not await self._store.put_challenge(
            Challenge(handle, purpose, challenge, id_number, user_handle, source, expires), MAX_LIVE_CHALLENGES
        ):
            raise Throttled(f"too many passkey ceremonies started from here; retry in {CHALLENGE_TTL} s", CHALLENGE_TTL)
        return handle

    def _ticket(self, token: str, source: str) -> str:
        ticket = self._tickets.read(token, source)
        if ticket is None:
            raise Unauthenticated("sign-in step expired or invalid; start again with your password")
        return ticket.id_number

    async def _record(self, action: str, outcome: str, id_number: str | None, source: str | None,
                      **detail: object) -> None:  # fmt: skip
        actor = current_caller().label
        if id_number and source and action in SIGN_IN_ACTIONS:  # the history's source column (identity/service.py)
            kind = "device" if source.startswith("device:") else "address"
            detail["source"] = f"{kind}-{self._refs.ref(f'{id_number}|{source}')[:16]}"
            detail.setdefault("factor", "passkey")
        log.info(action, outcome=outcome, account=mask(id_number) if id_number else "-", actor=actor, **detail)
        await self._audit.append(
            AuditEvent(
                actor=actor,
                action=action,
                outcome=outcome,
                subject=self._refs.ref(id_number) if id_number else None,
                source=self._refs.ref(source) if source else None,
                detail=dict(detail),
            )
        )


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    from webauthn.helpers.structs import AuthenticatorTransport

    known = {t.value for t in AuthenticatorTransport}
    transports = [AuthenticatorTransport(t) for t in passkey.transports if t in known]
    return PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=transports or None)


def _handle(handle: str) -> str:
    try:
        return str(uuid.UUID(handle))
    except (ValueError, TypeError, AttributeError):
        raise Unauthenticated("the passkey ceremony is unknown or expired; start again") from None


def _parsed(credential_json: str, parse: Any) -> Any:
    if not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise InvalidArgument(f"credential_json is the browser's credential JSON, at most {MAX_CREDENTIAL_JSON} bytes")
    try:
        json.loads(credential_json)
        return parse(credential_json)
    except (ValueError, WebAuthnException) as error:
        raise InvalidArgument(f"credential_json is not a WebAuthn credential: {error}") from None


def _flags(credential: Any) -> Any:
    try:
        return parse_authenticator_data(credential.response.authenticator_data)
    except Exception:  # malformed: verify_authentication_response refuses it with its reason
        return None


def passkey_id(passkey: Passkey) -> str:
    return b64(passkey.credential_id)
