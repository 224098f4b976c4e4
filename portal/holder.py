"""The holder keys the portal keeps for its citizens: one P-256 key per citizen, derived, never stored.

A credential the issuance service issues to a citizen who applied through the portal is bound to that citizen's
holder key: its public JWK is the credential's ``cnf.jwk`` (RFC 7800 §3.2), sent as ``holder_jwk`` with the
application (``Certificates.Apply``). The portal signs the Key Binding JWT of a presentation with it
(RFC 9901 §4.3, ``issuance.presentations.present``), which proves to a verifier that whoever presents the
credential holds the key it was issued to.

Derivation: ``seed = HKDF-SHA256(IKM = HOLDER_KEY, salt = none, info = the citizen's OIDC sub, L = 32)``
(RFC 5869 §2; a zero-length salt is HashLen zero bytes, §2.2), then the P-256 key of that seed as
``issuance.issuer_keys.SigningKey.from_seed`` makes it (FIPS 186-5 §A.4.2). So the same citizen (the same
pairwise ``sub`` the edge gives this portal, OIDC Core §8.1) always gets the same key — across restarts and on
every replica holding HOLDER_KEY — and two citizens never share one; nothing per citizen is kept anywhere.
HOLDER_KEY is the only key the portal holds (``stack/secrets.py`` PROCESS_KEYS["portal"]), read from the folder
``DINHDANH_KEYS_DIR``. Neither the seed nor the private key is ever logged or put into an error message.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import InvalidArgument
from core.keys.files import FileKeyProvider
from core.keys.provider import KeyUnavailable
from core.keys.purposes import HOLDER_KEY
from issuance.issuer_keys import SEED_BYTES, SigningKey
from portal.settings import PortalSettings

MAX_SUB = 255  # an OIDC sub is at most 255 ASCII characters (OIDC Core §2)


def derive_seed(holder_master: bytes, sub: str) -> bytes:
    """The 32-byte seed of ``sub``'s holder key: HKDF-SHA256 over HOLDER_KEY, ``info`` = the sub (RFC 5869)."""
    _check_sub(sub)
    if not isinstance(holder_master, bytes) or len(holder_master) != SEED_BYTES:
        raise KeyUnavailable(f"the {HOLDER_KEY} key is {SEED_BYTES} bytes")
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=sub.encode("utf-8")).derive(holder_master)


def derive_key(holder_master: bytes, sub: str) -> SigningKey:
    """``sub``'s holder key from the HOLDER_KEY bytes (see the module docstring)."""
    return _derived(holder_master, sub)


def available(settings: PortalSettings) -> bool:
    """Whether this portal holds HOLDER_KEY (``DINHDANH_KEYS_DIR`` set and holding it)."""
    try:
        _master(settings)
    except KeyUnavailable:
        return False
    return True


def holder_key(settings: PortalSettings, sub: str) -> SigningKey:
    """The citizen ``sub``'s private holder key; ``KeyUnavailable`` when this portal holds no HOLDER_KEY."""
    return _derived(_master(settings), sub)


def holder_public_jwk(settings: PortalSettings, sub: str) -> dict[str, Any]:
    """The public JWK of ``sub``'s holder key (``kty``, ``crv``, ``x``, ``y``, ``kid`` = its RFC 7638 thumbprint,
    ``use``, ``alg``): what ``Certificates.Apply`` sends as ``holder_jwk`` (JSON) for the credential's ``cnf``."""
    return dict(holder_key(settings, sub).public_jwk)


def _master(settings: PortalSettings) -> bytes:
    if settings.keys_dir is None:
        raise KeyUnavailable("this portal holds no holder key (DINHDANH_KEYS_DIR is not set)")
    return _read_master(Path(settings.keys_dir))


@lru_cache(maxsize=4)
def _read_master(folder: Path) -> bytes:
    return FileKeyProvider.in_folder(folder).key(HOLDER_KEY)


@lru_cache(maxsize=4096)
def _derived(holder_master: bytes, sub: str) -> SigningKey:
    return SigningKey.from_seed(derive_seed(holder_master, sub))


def _check_sub(sub: Any) -> None:
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB:
        raise InvalidArgument(f"a citizen's sub is a non-empty string of at most {MAX_SUB} characters")
