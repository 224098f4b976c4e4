"""What the gRPC users of ``loadtest/scenarios/`` share: pacing, the stack's channels, a citizen's token.

Every call goes over mutual TLS as the operator certificate of ``stack.json`` (``tls``), the platform peer a
load generator on the operator's side is, with the citizen's access token or the agency's bound token in the
metadata (what decides whose data a call reads); the agency and the facility use their own certificates
(``accounts.json`` ``agency``/``facility``), as their systems would.
"""

from __future__ import annotations

from typing import Any

import grpc
from locust import User, constant_pacing

from loadtest import grpc_calls
from loadtest.accounts import prepared, process_slot
from loadtest.model import PACE
from loadtest.scenarios.sso import CitizenToken, FlowError, forwarded_address


def operator_channel(service: str) -> grpc.Channel:
    """The process's channel to ``service`` with the operator certificate of ``stack.json``."""
    info = prepared().info
    tls = info.tls
    return grpc_calls.channel(info.services[service], tls["ca"], tls["cert"], tls["key"], server=service)


def own_channel(service: str, holder: dict[str, Any]) -> grpc.Channel:
    """The process's channel to ``service`` with ``holder``'s own certificate (the agency, the facility)."""
    address = prepared().info.services[service]
    return grpc_calls.channel(address, holder["ca"], holder["cert"], holder["key"], server=service)


class GrpcUser(User):
    """A user of gRPC calls, one iteration per ``PACE`` seconds."""

    abstract = True
    wait_time = constant_pacing(PACE)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        grpc_calls.init_gevent()
        self.slot = process_slot(environment)

    def timed(self, name: str, call: Any, **kwargs: Any) -> grpc_calls.Outcome[Any]:
        return grpc_calls.timed(self.environment, name, call, **kwargs)


class CitizenUser(GrpcUser):
    """A citizen's gRPC user: signs in through SSO when it starts (and again before the token expires)."""

    abstract = True

    def on_start(self) -> None:
        self.citizen = CitizenToken(self.environment, self, forwarded_address(self.slot[0]))

    def metadata(self) -> tuple[tuple[str, str]] | None:
        """The citizen's bearer metadata, or None when the sign-in failed (reported as ``flow``/``sign-in``)."""
        try:
            return grpc_calls.bearer(self.citizen.current())
        except FlowError:
            return None
