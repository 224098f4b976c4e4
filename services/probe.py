"""``python -m services.probe ready|live``: the Kubernetes probe of a gRPC service, over mutual TLS.

Every gRPC port demands a client certificate from the platform CA, which the kubelet's native ``grpc:`` probe
cannot present, so the Deployments (k8s/base) run this as an ``exec`` probe inside the container. It calls
``grpc.health.v1.Health/Check`` on ``localhost`` at the port of ``DINHDANH_LISTEN`` with the pod's own
certificate (``DINHDANH_TLS_CA``, ``DINHDANH_TLS_CERT``, ``DINHDANH_TLS_KEY``); the certificate names
``localhost`` (stack/pki.py, the cert-manager Certificates), and health answers any peer that passed mutual TLS.

- ``ready``: exit 0 only for ``SERVING``, which a service reports while its stores answer (PostgreSQL; S3 too
  for the vault), so an outage takes the pod out of its Service's endpoints;
- ``live``: exit 0 for any answer, ``SERVING`` or not: a store's outage must not restart every pod; only a process
  that does not answer at all (an error, or no answer within the timeout) fails.

Exit 1 on a failed check, with one line on stderr saying why (never a key or a certificate); 2 on bad usage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

MODES = ("ready", "live")
TIMEOUT = 3.0  # seconds; below the probes' timeoutSeconds (5), so a hung server fails the check, not the kubelet
FILES = ("DINHDANH_TLS_CA", "DINHDANH_TLS_KEY", "DINHDANH_TLS_CERT")


class ProbeError(Exception):
    """The probe cannot run: a setting is missing or a file unreadable (the message names which)."""


def _credentials(env: Mapping[str, str]) -> grpc.ChannelCredentials:
    pems = []
    for setting in FILES:
        path = env.get(setting, "")
        if not path:
            raise ProbeError(f"{setting} is not set")
        try:
            pems.append(Path(path).read_bytes())
        except OSError as e:
            raise ProbeError(f"{setting}: cannot read {path} ({e.strerror})") from None
    ca, key, cert = pems
    return grpc.ssl_channel_credentials(ca, key, cert)


def _port(env: Mapping[str, str]) -> int:
    listen = env.get("DINHDANH_LISTEN", "")
    port = listen.rpartition(":")[2]
    if not port.isdigit():
        raise ProbeError(f"DINHDANH_LISTEN={listen!r} has no port")
    return int(port)


def check(mode: str, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT) -> int:
    """The probe's exit code for ``mode`` (``ready`` or ``live``); raises ProbeError if it cannot run."""
    if mode not in MODES:
        raise ProbeError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    env = os.environ if env is None else env
    credentials, port = _credentials(env), _port(env)
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as e:
            print(f"probe {mode}: no answer from localhost:{port}: {e.code().name}", file=sys.stderr)
            return 1
    if mode == "live" or reply.status == health_pb2.HealthCheckResponse.SERVING:
        return 0
    print(f"probe {mode}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in MODES:
        print(f"usage: python -m services.probe {'|'.join(MODES)}", file=sys.stderr)
        return 2
    try:
        return check(args[0])
    except ProbeError as e:
        print(f"probe {args[0]}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
