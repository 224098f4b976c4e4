"""Who is calling. Set by the transport (mutual TLS, later bearer tokens), read by policies and audit."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from core.errors import PermissionDenied, Unauthenticated

SERVICE_URI_PREFIX = "spiffe://dinhdanh.gov.vn/service/"
OPERATOR_URI_PREFIX = "spiffe://dinhdanh.gov.vn/operator/"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated peer. ``kind`` is ``service`` or ``operator``; ``name`` is its certificate name."""

    kind: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def from_uri(cls, uri: str) -> Caller | None:
        """Parse the SPIFFE-style URI SAN the platform CA writes into every certificate."""
        for kind, prefix in (("service", SERVICE_URI_PREFIX), ("operator", OPERATOR_URI_PREFIX)):
            if uri.startswith(prefix) and len(uri) > len(prefix):
                return cls(kind, uri[len(prefix) :])
        return None


@dataclass(frozen=True, slots=True)
class Allow:
    """Who may call one RPC: named services, and operators when ``operators`` is true."""

    services: frozenset[str] = frozenset()
    operators: bool = False

    @classmethod
    def of(cls, services: Iterable[str] = (), operators: bool = False) -> Allow:
        return cls(frozenset(services), operators)

    def check(self, caller: Caller | None) -> Caller:
        if caller is None:
            raise Unauthenticated("a client certificate from the platform CA is required")
        if caller.kind == "operator" and self.operators:
            return caller
        if caller.kind == "service" and caller.name in self.services:
            return caller
        raise PermissionDenied(f"{caller.label} may not call this method")


_current: ContextVar[Caller | None] = ContextVar("dinhdanh_caller", default=None)


def current_caller() -> Caller:
    """The caller of the request being served (set by the transport before the handler runs)."""
    caller = _current.get()
    if caller is None:
        raise Unauthenticated("no authenticated caller")
    return caller


def bind_caller(caller: Caller | None) -> object:
    return _current.set(caller)


def unbind_caller(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
