"""A consent's status as an explicit state machine (after ReBIT's consent states and fosite's explicit flows).

::

    PENDING ──APPROVE (citizen)──▶ ACTIVE ──PAUSE (citizen)──▶ PAUSED
       │                           ▲   │ ◀──RESUME (citizen)──   │
       └─REJECT (citizen)─▶ REJECTED   └──REVOKE (citizen, agency, system)──┴──▶ REVOKED
    PENDING / ACTIVE / PAUSED ──EXPIRE (system)──▶ EXPIRED

REJECTED, REVOKED and EXPIRED are terminal: nothing leaves them. Only the citizen decides (approve, reject,
pause, resume); an agency may give a grant up (revoke), never widen or revive it; the system expires what is
past its expiry and revokes when a registration or a vault ends (a withdrawn agency, a shredded citizen).
A citizen's grant on their own initiative is a PENDING artefact approved in the same transaction.

``transition`` checks who before when: an actor that can never cause the event gets PERMISSION_DENIED
whatever the state; an event the state does not allow is FAILED_PRECONDITION.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from core.errors import FailedPrecondition, PermissionDenied


class Status(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    REJECTED = "REJECTED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class Event(enum.Enum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    REVOKE = "REVOKE"
    EXPIRE = "EXPIRE"


class Actor(enum.Enum):
    CITIZEN = "CITIZEN"
    AGENCY = "AGENCY"
    SYSTEM = "SYSTEM"


CITIZEN = frozenset({Actor.CITIZEN})
ANYONE = frozenset(Actor)
SYSTEM = frozenset({Actor.SYSTEM})

# (from, event) → (to, who may cause it). Every pair not listed is illegal.
TRANSITIONS: Mapping[tuple[Status, Event], tuple[Status, frozenset[Actor]]] = MappingProxyType(
    {
        (Status.PENDING, Event.APPROVE): (Status.ACTIVE, CITIZEN),
        (Status.PENDING, Event.REJECT): (Status.REJECTED, CITIZEN),
        (Status.ACTIVE, Event.PAUSE): (Status.PAUSED, CITIZEN),
        (Status.PAUSED, Event.RESUME): (Status.ACTIVE, CITIZEN),
        (Status.ACTIVE, Event.REVOKE): (Status.REVOKED, ANYONE),
        (Status.PAUSED, Event.REVOKE): (Status.REVOKED, ANYONE),
        (Status.PENDING, Event.EXPIRE): (Status.EXPIRED, SYSTEM),
        (Status.ACTIVE, Event.EXPIRE): (Status.EXPIRED, SYSTEM),
        (Status.PAUSED, Event.EXPIRE): (Status.EXPIRED, SYSTEM),
    }
)
TERMINAL = frozenset(Status) - {source for source, _ in TRANSITIONS}
ACTORS_OF: Mapping[Event, frozenset[Actor]] = MappingProxyType(
    {event: frozenset().union(*(who for (_, e), (_, who) in TRANSITIONS.items() if e is event)) for event in Event}
)


class IllegalTransition(FailedPrecondition):
    """The consent's status does not allow this event (FAILED_PRECONDITION)."""

    def __init__(self, status: Status, event: Event) -> None:
        if status in TERMINAL:
            message = f"the consent is {status.value}, a final state: it cannot {event.value}"
        else:
            message = f"a {status.value} consent cannot {event.value}"
        super().__init__(message)
        self.status = status
        self.event = event


class ActorNotAllowed(PermissionDenied):
    """This kind of caller may not cause this event (PERMISSION_DENIED)."""

    def __init__(self, event: Event, actor: Actor) -> None:
        super().__init__(f"a {actor.value.lower()} may not {event.value} a consent")
        self.event = event
        self.actor = actor


def transition(status: Status, event: Event, actor: Actor) -> Status:
    """The status after ``event`` caused by ``actor``, or the domain error that refuses it."""
    if actor not in ACTORS_OF[event]:
        raise ActorNotAllowed(event, actor)
    try:
        target, allowed = TRANSITIONS[status, event]
    except KeyError:
        raise IllegalTransition(status, event) from None
    if actor not in allowed:
        raise ActorNotAllowed(event, actor)
    return target
