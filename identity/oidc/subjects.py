"""Subject identifiers that do not reveal the citizen's ID number (OpenID Connect Core §8).

``sub`` must be stable and unique per citizen, but the 12-digit personal ID number is personal data
released only under the ``national_id`` scope. So ``sub`` is the ID number under deterministic
authenticated encryption (AES-SIV, RFC 5297) under the ``oidc-subject`` key (core.keys.purposes): the same
citizen always gets the same ``sub``, only the processes holding that key (edge and the services reading citizen
tokens) can turn it back into the number, and a forged ``sub`` does not open.

Two kinds (Core §8):

- **public**: associated data ``[b"dinhdanh/oidc-subject/v1"]``. This is also the platform-internal subject,
  what the SSO session (``User.sub``), the remembered consents (``oidc.consents``), refresh token records and
  consent artefacts keep; it is released only to ``public`` clients (portals registered before pairwise
  subjects, until migrated: docs/privacy.md).
- **pairwise** (§8.1): associated data ``[b"dinhdanh/oidc-subject/v2", sector identifier]``. Different
  sectors get unrelated values (AES-SIV is a deterministic PRF over associated data and plaintext), so two
  ministries cannot join their users on ``sub``; portals of one sector share it. A pairwise ``sub`` opens only
  with its sector: the access token carries it in its ``sector`` claim, set by the OP, and services pass it on
  (``Principal.sector``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from core.keys.sealing import b64, unb64

if TYPE_CHECKING:
    from identity.oidc.clients import Client

_AD = [b"dinhdanh/oidc-subject/v1"]
_PAIRWISE = b"dinhdanh/oidc-subject/v2"
PUBLIC, PAIRWISE = "public", "pairwise"
SUBJECT_TYPES = (PUBLIC, PAIRWISE)
SECTOR_CLAIM = "sector"  # the access token's claim naming the sector of its pairwise sub (private, RFC 9068 §2.2)
PREVIOUS_SUB_CLAIM = "previous_sub"  # in ID tokens during a migration window: the public sub before (privacy.md)
MAX_SECTOR = 253  # a DNS host name
HOST = re.compile(r"[a-z0-9.-]{1,253}")  # what a sector identifier may be (services/bearer.py SECTOR likewise)


class SectorError(ValueError):
    """A client whose sector cannot be determined (Core §8.1: redirect_uris on several hosts, no sector)."""


def sector_of(client: Client) -> str:
    """The client's sector identifier (Core §8.1): the registered one, else the host of its redirect_uris, which
    must then all share one host."""
    if client.sector_identifier:
        return client.sector_identifier
    return sector_for(client.redirect_uris)


def sector_for(redirect_uris: tuple[str, ...] | list[str], sector: str | None = None) -> str:
    """The sector a client with these redirect_uris gets (``SectorError`` when it cannot be told)."""
    if sector:
        if not HOST.fullmatch(sector.lower()):
            raise SectorError("a sector identifier is a host name (letters, digits, dots and hyphens)")
        return sector.lower()
    hosts = {(urlsplit(u).hostname or "").lower() for u in redirect_uris}
    if len(hosts) != 1:
        raise SectorError("redirect URIs on more than one host need a sector identifier (OIDC Core section 8.1)")
    host = hosts.pop()
    if not HOST.fullmatch(host):
        raise SectorError("the redirect URIs' host cannot be a sector identifier: give one (a host name)")
    return host


@dataclass(frozen=True)
class Released:
    """The subject a client is given (``sub``) and, for a pairwise one, its sector."""

    sub: str
    sector: str | None = None
    previous: str | None = None  # the public sub before a switch, during its transition window


class Subjects:
    def __init__(self, key: bytes) -> None:
        """``key``: the 64 bytes of the ``oidc-subject`` purpose."""
        self._siv = AESSIV(key)

    @staticmethod
    def _ad(sector: str | None) -> list[bytes]:
        return _AD if sector is None else [_PAIRWISE, sector.encode()]

    def subject(self, id_number: str, sector: str | None = None) -> str:
        """The public (internal) subject, or with ``sector`` the pairwise one of that sector (Core §8.1)."""
        return b64(self._siv.encrypt(id_number.encode(), self._ad(sector)))

    def id_number(self, subject: str, sector: str | None = None) -> str | None:
        """The ID number of a subject of this kind (public without ``sector``, that sector's pairwise with it);
        None for anything else: a sub of another sector does not open."""
        raw = unb64(subject) if 0 < len(subject) <= 64 else None
        if raw is None or (sector is not None and not 0 < len(sector) <= MAX_SECTOR):
            return None
        try:
            return self._siv.decrypt(raw, self._ad(sector)).decode()
        except (InvalidTag, ValueError):
            return None

    def released(self, internal: str, client: Client) -> Released:
        """What ``client`` is given for the citizen whose internal subject is ``internal`` (Core §8)."""
        if client.subject_type != PAIRWISE:
            return Released(internal)
        id_number = self.id_number(internal)
        if id_number is None:
            raise ValueError("not an internal subject")
        sector = sector_of(client)
        return Released(self.subject(id_number, sector), sector)

    def internal(self, subject: str, sector: str | None) -> str | None:
        """The internal subject behind a released one (None if it does not open)."""
        id_number = self.id_number(subject, sector)
        return None if id_number is None else self.subject(id_number)
