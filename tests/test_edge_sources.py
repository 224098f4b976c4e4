"""The edge's throttling source alone: sealed device ids, the client address behind trusted proxies, and
the per-address limit on new device ids (issue 9, item 3). Pure functions; a fake clock."""

from __future__ import annotations

import secrets

from services.edge.sources import DeviceIds, MintLimiter, client_address, networks

PROXIES = networks("10.0.0.0/8, 2001:db8::/32")


def test_only_a_device_id_this_edge_sealed_is_read() -> None:
    devices = DeviceIds(b"k" * 32)
    device, cookie = devices.mint()
    assert devices.read(cookie) == device
    assert devices.read(secrets.token_urlsafe(18)) is None  # the old kind of cookie: any 16–64 characters
    assert devices.read(device) is None  # the bare id
    assert devices.read(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None  # tampered
    assert DeviceIds(b"o" * 32).read(cookie) is None  # another deployment's
    assert [devices.read(odd) for odd in ("", None, "x" * 5000)] == [None, None, None]


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_address("203.0.113.7", ["198.51.100.1"], ()) == "203.0.113.7"
    assert client_address("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"


def test_forwarded_for_is_read_right_to_left_through_trusted_hops_only() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.2", ["198.51.100.1, 10.1.1.1"], PROXIES) == "198.51.100.1"  # two proxies
    # whatever the client wrote on the left is not believed: the first untrusted hop from the right wins
    assert client_address("10.0.0.2", ["6.6.6.6, 198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.2", ["6.6.6.6", "198.51.100.1"], PROXIES) == "198.51.100.1"  # two headers
    assert client_address("2001:db8::1", ["[2001:db8::2]:443, 198.51.100.9:5000"], PROXIES) == "198.51.100.9"


def test_a_malformed_or_missing_hop_stops_at_the_last_trusted_one() -> None:
    assert client_address("10.0.0.2", ["not-an-address"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["198.51.100.1, junk"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", [], PROXIES) == "10.0.0.2"
    assert client_address(None, ["198.51.100.1"], PROXIES) == "unknown"


def test_new_device_ids_are_limited_per_address() -> None:
    mints = MintLimiter(per_hour=60, burst=3)
    assert [mints.allow("198.51.100.1", now=0) for _ in range(5)] == [True, True, True, False, False]
    assert mints.allow("198.51.100.2", now=0)  # another address has its own bucket
    assert not mints.allow("198.51.100.1", now=30)  # half a token back
    assert mints.allow("198.51.100.1", now=61)  # one per minute
    assert not mints.allow("198.51.100.1", now=61)
