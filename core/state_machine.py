"""An explicit state machine with guarded transitions (Ory Hydra's consent flow is the model): a table of
(status, event) → (next status, the actors who may cause it). Every pair not in the table is illegal.

Two refusals, in this order: an actor who may never cause the event (whatever the status) is
``PERMISSION_DENIED``; an event the current status does not allow is ``FAILED_PRECONDITION``. A domain names
what its machine governs by subclassing both errors with its ``noun`` (``consent.states``,
``issuance.dossiers``), so callers catch the domain's own classes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

from core.errors import FailedPrecondition, PermissionDenied

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)
A = TypeVar("A", bound=enum.Enum)


class IllegalTransition(FailedPrecondition):
    """The status does not allow this event (FAILED_PRECONDITION)."""

    noun = "object"

    def __init__(self, status: enum.Enum, event: enum.Enum, final: bool) -> None:
        if final:
            message = f"the {self.noun} is {status.value}, a final state: it cannot {event.value}"
        else:
            message = f"a {status.value} {self.noun} cannot {event.value}"
        super().__init__(message)
        self.status = status
        self.event = event


class ActorNotAllowed(PermissionDenied):
    """This kind of caller may not cause this event (PERMISSION_DENIED)."""

    noun = "object"

    def __init__(self, event: enum.Enum, actor: enum.Enum) -> None:
        super().__init__(f"a {actor.value.lower()} may not {event.value} a {self.noun}")
        self.event = event
        self.actor = actor


class StateMachine(Generic[S, E, A]):
    """The table, what follows from it (final statuses, who may ever cause each event), and ``transition``."""

    def __init__(
        self,
        transitions: Mapping[tuple[S, E], tuple[S, frozenset[A]]],
        statuses: Iterable[S],
        events: Iterable[E],
        illegal: type[IllegalTransition],
        not_allowed: type[ActorNotAllowed],
    ) -> None:
        self.transitions: Mapping[tuple[S, E], tuple[S, frozenset[A]]] = MappingProxyType(dict(transitions))
        self.terminal: frozenset[S] = frozenset(statuses) - {source for source, _ in self.transitions}
        self.actors_of: Mapping[E, frozenset[A]] = MappingProxyType(
            {
                event: frozenset().union(*(who for (_, e), (_, who) in self.transitions.items() if e is event))
                for event in events
            }
        )
        self._illegal = illegal
        self._not_allowed = not_allowed

    def transition(self, status: S, event: E, actor: A) -> S:
        """The status after ``event`` caused by ``actor``, or the domain error that refuses it."""
        if actor not in self.actors_of[event]:
            raise self._not_allowed(event, actor)
        try:
            target, allowed = self.transitions[status, event]
        except KeyError:
            raise self._illegal(status, event, status in self.terminal) from None
        if actor not in allowed:
            raise self._not_allowed(event, actor)
        return target
