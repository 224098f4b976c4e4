"""Where a sign-in comes from, as the edge tells the identity service (its throttling ``source``).

A browser's source is ``device:<id>`` only when it presents a device id this edge minted and sealed
(AES-256-GCM, its own purpose label ``device-id``): a cookie the edge did not seal — invented, rotated,
from another deployment, expired — counts as no device at all, and the source is then the client's
address, ``ip:<address>``. An address is never remembered as familiar by the identity service
(``identity.throttling.familiar_eligible``), so sharing a citizen's NAT or ingress gives no head start.

The client's address is the TCP peer unless that peer is a configured trusted proxy
(``DINHDANH_TRUSTED_PROXIES``, CIDR list, none by default); then ``X-Forwarded-For`` is read from the
right, through trusted hops only, and the first address not trusted is the client (RFC 7239 §5.2 notes
that only hops one trusts can be believed; the leftmost entries are whatever the client wrote).

Device ids are sealed under the edge's own ``device-id`` key (``core.keys.purposes.DEVICE_ID``).

Minting is limited per client address (a token bucket in this process): a client who drops its cookie to
get a fresh device on every request gets at most ``burst`` devices, then one per ``3600 / per_hour`` s,
and meanwhile signs in as its address.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from core.settings import Settings
from identity.oidc.sealed import SealedCodec
from services.edge import http

DEVICE_PREFIX = "device:"
ADDRESS_PREFIX = "ip:"
DEVICE_TTL = 400 * 86400  # the longest cookie lifetime browsers keep (RFC 6265bis §5.5)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DeviceIds:
    """Device ids minted and sealed by this edge; ``read`` answers only for those."""

    def __init__(self, key: bytes) -> None:
        self._codec = SealedCodec(key, "device-id")

    def mint(self) -> tuple[str, str]:
        """A new device id and the cookie value that carries it."""
        device = secrets.token_urlsafe(18)
        return device, self._codec.encode({"d": device}, DEVICE_TTL)

    def read(self, cookie: str | None) -> str | None:
        """The device id sealed in ``cookie``, or None for anything this edge did not seal (or that expired)."""
        claims = self._codec.decode(cookie)
        device = claims.get("d") if claims else None
        return device if isinstance(device, str) and device else None


def networks(setting: str) -> tuple[Network, ...]:
    """``DINHDANH_TRUSTED_PROXIES``: comma- or space-separated CIDRs (``10.0.0.0/8, 2001:db8::/32``)."""
    found = []
    for part in setting.replace(",", " ").split():
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SystemExit(f"DINHDANH_TRUSTED_PROXIES: {part!r} is not an address or a CIDR network") from None
    return tuple(found)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer, or — through trusted proxies only — the nearest untrusted hop of
    ``X-Forwarded-For`` read right to left. A malformed hop ends the walk at the last trusted one."""
    current = _address(peer or "")
    if current is None:
        return "unknown"
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    while any(current in network for network in trusted) and hops:
        previous = _address(hops.pop())
        if previous is None:
            break
        current = previous
    return str(current)


class MintLimiter:
    """Per-address token bucket for new device ids: ``burst`` at once, refilled at ``per_hour``."""

    def __init__(self, per_hour: float, burst: int, remembered: int = 100_000) -> None:
        self._rate = per_hour / 3600
        self._burst = float(burst)
        self._remembered = remembered
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address → (tokens, at)

    def allow(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(address, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        allowed = tokens >= 1
        self._buckets[address] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > self._remembered:  # forget the least recently seen (they had refilled)
            self._buckets.popitem(last=False)
        return allowed


class Sources:
    """The source of each sign-in request, and the device ids this edge hands out."""

    def __init__(self, devices: DeviceIds, trusted: tuple[Network, ...], mints: MintLimiter) -> None:
        self._devices = devices
        self._trusted = trusted
        self._mints = mints

    @classmethod
    def from_settings(cls, settings: Settings, key: bytes) -> Sources:
        """``key``: the edge's ``device-id`` key."""
        return cls(
            DeviceIds(key),
            networks(settings.trusted_proxies),
            MintLimiter(settings.device_mints_per_hour, settings.device_mint_burst),
        )

    def address(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.getlist("x-forwarded-for"), self._trusted)

    def device(self, request: Request) -> str | None:
        return self._devices.read(request.cookies.get(http.DEVICE_COOKIE))

    def of(self, request: Request) -> str:
        """``device:<id>`` for a device id this edge sealed, else ``ip:<client address>``."""
        device = self.device(request)
        return f"{DEVICE_PREFIX}{device}" if device else f"{ADDRESS_PREFIX}{self.address(request)}"

    def give_device(self, request: Request, response: Response) -> None:
        """Set a new sealed device id on a browser that has none, if its address may have another now."""
        if self.device(request) is None and self._mints.allow(self.address(request)):
            _, cookie = self._devices.mint()
            http.set_cookie(response, http.DEVICE_COOKIE, cookie, max_age=DEVICE_TTL)
